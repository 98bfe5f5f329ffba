"""Data models (msgspec Structs), each module loaded on first access to one of its names."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .chat import *  # noqa: F403
    from .confidential import ConfidentialComputeRequest as ConfidentialComputeRequest
    from .confidential import ConfidentialComputeResponse as ConfidentialComputeResponse
    from .meta import ResponseMeta as ResponseMeta
    from .nodes import NodesCreateLockRequest as NodesCreateLockRequest
    from .nodes import NodesCreateLockResponse as NodesCreateLockResponse

# Names outside `chat`, by module; every other name is looked up in `chat`.
_LAZY = {
    "ResponseMeta": ".meta",
    "ConfidentialComputeRequest": ".confidential",
    "ConfidentialComputeResponse": ".confidential",
    "NodesCreateLockRequest": ".nodes",
    "NodesCreateLockResponse": ".nodes",
}


def __getattr__(name: str) -> Any:
    module = import_module(_LAZY.get(name, ".chat"), __name__)
    if name in module.__all__:
        return getattr(module, name)
    raise AttributeError(f"module 'atoma_core.models' has no attribute {name!r}")
