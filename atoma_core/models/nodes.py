"""msgspec Structs for `POST /v1/nodes/lock`: lock a confidential node for a model, get its key."""

from __future__ import annotations

from msgspec import UNSET, Struct, UnsetType

__all__ = ["NodesCreateLockRequest", "NodesCreateLockResponse"]


class NodesCreateLockRequest(Struct, omit_defaults=True, kw_only=True):
    """`max_num_tokens` counts input and output tokens; `timeout` is in seconds."""

    model: str
    max_num_tokens: int | None | UnsetType = UNSET
    timeout: int | None | UnsetType = UNSET


class NodesCreateLockResponse(Struct, gc=False):
    """The locked node: its X25519 public key (base64 of 32 raw bytes) and the stack to bill."""

    node_small_id: int
    public_key: str
    stack_small_id: int
    stack_entry_digest: str | None = None
