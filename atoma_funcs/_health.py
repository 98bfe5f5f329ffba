"""`health` (`GET /health`, no token): is the service up."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from atoma_core._body import json_response
from atoma_core._operation import Operation
from atoma_core._request import call
from atoma_core.models.models import HealthResponse

if TYPE_CHECKING:
    from atoma_core.config import RequestOptions
    from atoma_core.core import AtomaCore
    from atoma_core.errors import AtomaError
    from atoma_core.result import Result

__all__ = ["health"]

_HEALTH: Operation[Any, HealthResponse] = Operation(
    "health", "GET", "/health", json_response(HealthResponse), auth=False
)


async def health(
    core: AtomaCore, options: RequestOptions | None = None
) -> Result[HealthResponse, AtomaError]:
    """`Ok(HealthResponse(message="ok"))` when the service answers; sends no token."""
    return await call(core, _HEALTH, None, options)
