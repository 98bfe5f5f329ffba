"""Node locks (`POST /v1/nodes/lock`): `nodes_create_lock` picks a confidential node for a model
and returns its X25519 public key (confidential compute encrypts to it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from atoma_core._body import json_response
from atoma_core._operation import Operation
from atoma_core._request import call
from atoma_core.models.nodes import NodesCreateLockRequest, NodesCreateLockResponse

if TYPE_CHECKING:
    from atoma_core.config import RequestOptions
    from atoma_core.core import AtomaCore
    from atoma_core.errors import AtomaError
    from atoma_core.result import Result
    from atoma_core.types import NodesCreateLockRequestParam

__all__ = ["nodes_create_lock"]

_LOCK = Operation(
    "nodes_create_lock",
    "POST",
    "/v1/nodes/lock",
    json_response(NodesCreateLockResponse),
    request_type=NodesCreateLockRequest,
)


async def nodes_create_lock(
    core: AtomaCore,
    request: NodesCreateLockRequest | NodesCreateLockRequestParam,
    options: RequestOptions | None = None,
) -> Result[NodesCreateLockResponse, AtomaError]:
    """Lock a node for `model`. `Ok(NodesCreateLockResponse)`: `.public_key`, `.stack_small_id`,
    `.node_small_id`. No confidential node for the model: `Err(InternalServerError)` (503)."""
    return await call(core, _LOCK, request, options)
