"""msgspec Structs for `GET /v1/models` and `GET /health`."""

from __future__ import annotations

from typing import ClassVar

from .meta import PlainData, ResponseMeta

__all__ = ["HealthResponse", "Model", "ModelList"]


class Model(PlainData, gc=False):
    """A model the server serves; `id` is what requests name."""

    id: str
    object: str = "model"
    created: int = 0
    owned_by: str = ""


class ModelList(PlainData, dict=True):
    """`GET /v1/models`. `meta` (not a wire field) is set by the SDK."""

    meta: ClassVar[ResponseMeta | None] = None

    data: list[Model]
    object: str = "list"


class HealthResponse(PlainData, dict=True):
    """`GET /health`: `{"message": "ok"}` when the service is up."""

    meta: ClassVar[ResponseMeta | None] = None

    message: str = ""
