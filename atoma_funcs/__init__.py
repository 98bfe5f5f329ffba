"""Standalone functions over `AtomaCore`, each returning a `Result`, plus the bundled `AtomaSDK`.

Each name is imported on first access (PEP 562): `from atoma_funcs import chat_create` loads
the request path and the chat models, but nothing stream-specific and no test server.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .chat_completions_create import chat_create
    from .chat_completions_create_stream import chat_create_stream
    from .sdk import AtomaSDK

__all__ = ["AtomaSDK", "chat_create", "chat_create_stream"]

# One module per operation, named by its operation id (a module may not share the function's
# name: importing it would replace the function on this package).
_LAZY = {
    "chat_create": ".chat_completions_create",
    "chat_create_stream": ".chat_completions_create_stream",
    "AtomaSDK": ".sdk",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'atoma_funcs' has no attribute {name!r}")
    return getattr(import_module(module, __name__), name)


def __dir__() -> list[str]:
    return sorted(__all__)
