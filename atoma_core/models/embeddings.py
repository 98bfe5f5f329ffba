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
    """One input's vector. A str (base64 of little-endian float32) if encoding_format="base64":
    checked to be that when decoded, else the response is a `ResponseValidationError`."""

    embedding: Union[list[float], str]
    index: int = 0
    object: str = "embedding"

    def __post_init__(self) -> None:  # msgspec runs it per decoded item; a ValueError fails the decode
        if type(self.embedding) is str:
            _check_base64_floats(self.embedding)


def _check_base64_floats(text: str) -> None:
    """Refuse a str that is not standard, padded base64 of whole float32 values (no decoding:
    the alphabet and padding checked, the byte count worked out from the length)."""
    import re

    if len(text) % 4 or re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", text) is None:
        raise ValueError(f"embedding of {len(text)} characters is not valid base64")
    size = len(text) // 4 * 3 - (len(text) - len(text.rstrip("=")))
    if size % 4:
        raise ValueError(f"base64 embedding of {size} bytes is not whole float32 values (4 bytes each)")


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
