"""The model catalogue: `models_list` (`GET /v1/models`) and `open_router_models_list`
(`GET /v1/open_router/models`, no token)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from atoma_core._body import json_response
from atoma_core._operation import Operation
from atoma_core._request import call
from atoma_core.models.models import ModelList

if TYPE_CHECKING:
    from atoma_core.config import RequestOptions
    from atoma_core.core import AtomaCore
    from atoma_core.errors import AtomaError
    from atoma_core.result import Result

__all__ = ["models_list", "open_router_models_list"]

_LIST: Operation[Any, ModelList] = Operation("models_list", "GET", "/v1/models", json_response(ModelList))
_OPEN_ROUTER: Operation[Any, Any] = Operation(
    "open_router_models_list", "GET", "/v1/open_router/models", json_response(object), auth=False
)


async def models_list(
    core: AtomaCore, options: RequestOptions | None = None
) -> Result[ModelList, AtomaError]:
    """The models the server serves. `Ok(ModelList)`: `.data[i].id`. A server without the route
    (some OpenAI-compatible ones) gives `Err(NotFoundError)`."""
    return await call(core, _LIST, None, options)


async def open_router_models_list(
    core: AtomaCore, options: RequestOptions | None = None
) -> Result[Any, AtomaError]:
    """Atoma's catalogue in OpenRouter's format, as plain JSON (dicts and lists). Sends no token."""
    return await call(core, _OPEN_ROUTER, None, options)
