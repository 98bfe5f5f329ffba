"""msgspec Structs for `POST /v1/embeddings`."""

from __future__ import annotations

from typing import ClassVar, Union

from msgspec import UNSET, UnsetType

from .meta import PlainData, ResponseMeta

__all__ = ["Embedding", "EmbeddingRequest", "EmbeddingResponse", "EmbeddingUsage"]


class EmbeddingRequest(PlainData, omit_defaults=True, kw_only=True, forbid_unknown_fields=True):
    """The body of `POST /v1/embeddings`: one text or a list of texts (token ids for servers that
    take them)."""

    model: str
    input: Union[str, list[Union[str, int, list[int]]]]  # msgspec allows one array type per union
    dimensions: int | None | UnsetType = UNSET
    encoding_format: str | None | UnsetType = UNSET
    user: str | None | UnsetType = UNSET


class Embedding(PlainData, gc=False):
    """One input's vector. A str (base64 of little-endian float32) if encoding_format="base64"."""

    embedding: Union[list[float], str]
    index: int = 0
    object: str = "embedding"


class EmbeddingUsage(PlainData, gc=False):
    """Token counts of an embeddings request (no completion tokens)."""

    prompt_tokens: int = 0
    total_tokens: int = 0


class EmbeddingResponse(PlainData, dict=True):
    """The vectors, in input order. `meta` (not a wire field) is set by the SDK."""

    meta: ClassVar[ResponseMeta | None] = None

    data: list[Embedding]
    model: str = ""
    object: str = "list"
    usage: EmbeddingUsage | None = None
