"""Embeddings (`POST /v1/embeddings`): `embeddings_create`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from atoma_core._body import json_response
from atoma_core._operation import Operation
from atoma_core._request import call
from atoma_core.models.embeddings import EmbeddingRequest, EmbeddingResponse

if TYPE_CHECKING:
    from atoma_core.config import RequestOptions
    from atoma_core.core import AtomaCore
    from atoma_core.errors import AtomaError
    from atoma_core.result import Result
    from atoma_core.types import EmbeddingRequestParam

__all__ = ["embeddings_create"]

EMBEDDINGS_PATH = "/v1/embeddings"

_CREATE = Operation(
    "embeddings_create",
    "POST",
    EMBEDDINGS_PATH,
    json_response(EmbeddingResponse),
    request_type=EmbeddingRequest,
    idempotent=True,  # inference: a copy changes nothing (hedging may send one)
)


async def embeddings_create(
    core: AtomaCore, request: EmbeddingRequest | EmbeddingRequestParam, options: RequestOptions | None = None
) -> Result[EmbeddingResponse, AtomaError]:
    """Embed one text or a list of texts. `Ok(EmbeddingResponse)`: `.data[i].embedding`, `.usage`."""
    return await call(core, _CREATE, request, options)
