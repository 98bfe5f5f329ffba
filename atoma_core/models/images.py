"""msgspec Structs for `POST /v1/images/generations`."""

from __future__ import annotations

from typing import ClassVar

from msgspec import UNSET, UnsetType

from .meta import PlainData, ResponseMeta

__all__ = ["Image", "ImageGenerationRequest", "ImageGenerationResponse"]


class ImageGenerationRequest(PlainData, omit_defaults=True, kw_only=True, forbid_unknown_fields=True):
    """The body of `POST /v1/images/generations`. `size` is "WIDTHxHEIGHT", e.g. "1024x1024"."""

    model: str
    prompt: str
    n: int | None | UnsetType = UNSET
    quality: str | None | UnsetType = UNSET
    response_format: str | None | UnsetType = UNSET
    size: str | None | UnsetType = UNSET
    style: str | None | UnsetType = UNSET
    user: str | None | UnsetType = UNSET


class Image(PlainData, gc=False):
    """One generated image: a `url`, or `b64_json` if response_format="b64_json"."""

    url: str | None = None
    b64_json: str | None = None
    revised_prompt: str | None = None


class ImageGenerationResponse(PlainData, dict=True):
    """The generated images. `meta` (not a wire field) is set by the SDK."""

    meta: ClassVar[ResponseMeta | None] = None

    data: list[Image]
    created: int = 0
