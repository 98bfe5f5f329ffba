"""msgspec Structs for the node routes: `POST /v1/nodes/lock` (a node for a model, and its X25519
public key) and `POST /v1/nodes` (a node operator registering its public address, signed)."""

from __future__ import annotations

from typing import ClassVar

from msgspec import UNSET, UnsetType

from .meta import PlainData, ResponseMeta

__all__ = [
    "NodePublicAddressAssignment",
    "NodesCreateLockRequest",
    "NodesCreateLockResponse",
    "NodesCreateRequest",
    "NodesCreateResponse",
]


class NodesCreateLockRequest(PlainData, omit_defaults=True, kw_only=True, forbid_unknown_fields=True):
    """Lock a confidential node for `model`; `max_num_tokens` and `timeout` are optional hints."""

    model: str
    max_num_tokens: int | None | UnsetType = UNSET
    timeout: int | None | UnsetType = UNSET


class NodesCreateLockResponse(PlainData, dict=True):
    """The locked node: its X25519 `public_key` (base64) and the stack to bill."""

    meta: ClassVar[ResponseMeta | None] = None

    public_key: str
    node_small_id: int
    stack_small_id: int
    stack_entry_digest: str | None = None


class NodePublicAddressAssignment(PlainData, kw_only=True, forbid_unknown_fields=True):
    """What a node operator signs: the node, its public address and its country."""

    node_small_id: int
    public_address: str
    country: str


class NodesCreateRequest(PlainData, kw_only=True, forbid_unknown_fields=True):
    """The body of `POST /v1/nodes`: the assignment and the node's Sui signature of it (base64).
    The SDK sends both as given: the signature is made by the node's own key, outside the SDK."""

    data: NodePublicAddressAssignment
    signature: str


class NodesCreateResponse(PlainData, dict=True):
    """The proxy's word that the address was registered."""

    meta: ClassVar[ResponseMeta | None] = None

    message: str
