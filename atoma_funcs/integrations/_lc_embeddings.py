"""`AtomaEmbeddings`: LangChain embeddings on `embeddings_create` (or its confidential twin)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from langchain_core.embeddings import Embeddings
from msgspec import UNSET
from pydantic import SecretStr

from atoma_core.models.embeddings import EmbeddingRequest
from atoma_core.result import Err

from ._lc_client import AtomaClient

if TYPE_CHECKING:
    from atoma_core.core import AtomaCore
    from atoma_core.models.embeddings import EmbeddingResponse
    from atoma_core.result import Result

__all__ = ["AtomaEmbeddings"]


class AtomaEmbeddings(AtomaClient, Embeddings):
    """LangChain embeddings on Atoma's `embeddings_create`. Long lists go in batches of
    `chunk_size` texts per request. Core and connection parameters as for `ChatAtoma`."""

    def __init__(
        self,
        model: str,
        core: AtomaCore | None = None,
        *,
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        dimensions: int | None = None,
        chunk_size: int = 256,
        confidential: bool = False,
    ) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        self.model = model
        self.core = core
        self.api_key = SecretStr(api_key) if isinstance(api_key, str) else api_key
        self.base_url = base_url
        self.timeout = timeout
        self.max_retries = max_retries
        self.dimensions = dimensions
        self.chunk_size = chunk_size
        self.confidential = confidential
        self._core = None
        self._thread = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"AtomaEmbeddings(model={self.model!r}, confidential={self.confidential})"

    async def _embed(self, texts: list[str]) -> list[list[float]]:
        if self.confidential:
            from .._confidential import confidential_embeddings_create as create
        else:
            from .._embeddings import embeddings_create as create
        core = self._atoma_core()
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.chunk_size):
            request = EmbeddingRequest(
                model=self.model,
                input=list(texts[start : start + self.chunk_size]),
                dimensions=UNSET if self.dimensions is None else self.dimensions,
            )
            result: Result[EmbeddingResponse, Any] = await create(core, request)
            if isinstance(result, Err):
                raise result.error
            for item in sorted(result.value.data, key=lambda d: d.index):
                if not isinstance(item.embedding, list):
                    raise TypeError("AtomaEmbeddings asks for float vectors; got base64")
                vectors.append(item.embedding)
        return vectors

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return await self._embed(list(texts))

    async def aembed_query(self, text: str) -> list[float]:
        return (await self._embed([text]))[0]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._loop_thread().run(self._embed(list(texts)))

    def embed_query(self, text: str) -> list[float]:
        return self._loop_thread().run(self._embed([text]))[0]
