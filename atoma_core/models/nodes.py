"""msgspec Structs for `POST /v1/nodes/lock`: a node for a model, and its X25519 public key."""

from __future__ import annotations

from typing import ClassVar

from msgspec import UNSET, UnsetType

from .meta import PlainData, ResponseMeta

__all__ = ["NodesCreateLockRequest", "NodesCreateLockResponse"]


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
