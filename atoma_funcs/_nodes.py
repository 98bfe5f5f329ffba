"""Node routes: `nodes_create_lock` (`POST /v1/nodes/lock`) picks a confidential node for a model
and returns its X25519 public key (confidential compute encrypts to it); `nodes_create`
(`POST /v1/nodes`) lets a node operator register the node's public address."""

from __future__ import annotations

from typing import TYPE_CHECKING

from atoma_core._body import json_response
from atoma_core._operation import Operation
from atoma_core._request import call
from atoma_core.models.nodes import (
    NodesCreateLockRequest,
    NodesCreateLockResponse,
    NodesCreateRequest,
    NodesCreateResponse,
)

if TYPE_CHECKING:
    from atoma_core.config import RequestOptions
    from atoma_core.core import AtomaCore
    from atoma_core.errors import AtomaError
    from atoma_core.result import Result
    from atoma_core.types import NodesCreateLockRequestParam, NodesCreateRequestParam

__all__ = ["nodes_create", "nodes_create_lock"]

_LOCK = Operation(
    "nodes_create_lock",
    "POST",
    "/v1/nodes/lock",
    json_response(NodesCreateLockResponse),
    request_type=NodesCreateLockRequest,
)
# No bearer token: the proxy authenticates a registration by its signature (the spec's
# `nodes_create` has no security), so the caller's API token is not sent along.
_CREATE = Operation(
    "nodes_create",
    "POST",
    "/v1/nodes",
    json_response(NodesCreateResponse),
    request_type=NodesCreateRequest,
    auth=False,
)


async def nodes_create_lock(
    core: AtomaCore,
    request: NodesCreateLockRequest | NodesCreateLockRequestParam,
    options: RequestOptions | None = None,
) -> Result[NodesCreateLockResponse, AtomaError]:
    """Lock a node for `model`. `Ok(NodesCreateLockResponse)`: `.public_key`, `.stack_small_id`,
    `.node_small_id`. No confidential node for the model: `Err(InternalServerError)` (503)."""
    return await call(core, _LOCK, request, options)


async def nodes_create(
    core: AtomaCore,
    request: NodesCreateRequest | NodesCreateRequestParam,
    options: RequestOptions | None = None,
) -> Result[NodesCreateResponse, AtomaError]:
    """Register (or update) a node's public address: `data` (`node_small_id`, `public_address`,
    `country`) and `signature`, the node's base64 Sui signature of it, made by the caller.
    `Ok(NodesCreateResponse)`; a signature the proxy refuses comes back as its `APIError`."""
    return await call(core, _CREATE, request, options)
