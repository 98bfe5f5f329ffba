"""Atoma SDK core: `AtomaCore`, `Result`, configuration, the error tree and the models.

Names load on first access (PEP 562), so `import atoma_core` is cheap and importing one
function pulls in only what it uses.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from . import errors, models
    from ._events import StreamMetrics
    from ._stream import ChatCompletionStream, CompletionStream
    from .config import BackoffStrategy, CallInfo, HookContext, Hooks, RequestOptions, RetryConfig, Timeouts
    from .core import AtomaCore
    from .models.meta import ResponseMeta
    from .result import Err, Ok, Result, UnwrapError

__all__ = [
    "AtomaCore",
    "BackoffStrategy",
    "CallInfo",
    "ChatCompletionStream",
    "CompletionStream",
    "Err",
    "HookContext",
    "Hooks",
    "Ok",
    "RequestOptions",
    "ResponseMeta",
    "Result",
    "RetryConfig",
    "StreamMetrics",
    "Timeouts",
    "UnwrapError",
    "__version__",
    "errors",
    "models",
]

_LAZY = {
    "AtomaCore": ".core",
    "BackoffStrategy": ".config",
    "CallInfo": ".config",
    "HookContext": ".config",
    "Hooks": ".config",
    "RequestOptions": ".config",
    "RetryConfig": ".config",
    "Timeouts": ".config",
    "Ok": ".result",
    "Err": ".result",
    "Result": ".result",
    "ResponseMeta": ".models.meta",
    "UnwrapError": ".result",
    "ChatCompletionStream": "._stream",
    "CompletionStream": "._stream",
    "StreamMetrics": "._events",
}


def __getattr__(name: str) -> Any:
    if name in ("errors", "models"):
        return import_module(f".{name}", __name__)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'atoma_core' has no attribute {name!r}")
    # Kept as a module global: a later `from ... import name` finds it without this call.
    value = globals()[name] = getattr(import_module(module, __name__), name)
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
