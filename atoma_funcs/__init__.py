"""Standalone functions over `AtomaCore`, each returning a `Result`, plus the bundled clients
`AtomaSDK` (async) and `AtomaSyncSDK` (for synchronous code).

Each name is imported on first access (PEP 562) from the private module of its area:
`from atoma_funcs import chat_create` loads the request path and the chat models, and nothing
stream-specific, no other area and no test server.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._batch import BatchRequest, BatchResult, batch_run
    from ._batch_files import BatchOutputFile, batch_output_line, read_batch_output
    from ._chat import chat_create, chat_create_stream
    from ._completions import completions_create, completions_create_stream
    from ._confidential import (
        confidential_chat_create,
        confidential_chat_create_stream,
        confidential_completions_create,
        confidential_completions_create_stream,
        confidential_embeddings_create,
        confidential_images_generate,
    )
    from ._embeddings import embeddings_create
    from ._health import health
    from ._images import images_generate
    from ._models import models_list, open_router_models_list
    from ._nodes import nodes_create, nodes_create_lock
    from ._parse import chat_parse, confidential_chat_parse
    from ._parse_stream import ChatParseStream, chat_parse_stream, confidential_chat_parse_stream
    from ._sync import AtomaSyncSDK, SyncStream
    from ._tools import FunctionTool, chat_run_tools, confidential_chat_run_tools, tool
    from .sdk import AtomaSDK

# Which private module (one per area) holds each public name.
_LAZY = {
    "batch_run": "._batch",
    "BatchRequest": "._batch",
    "BatchResult": "._batch",
    "BatchOutputFile": "._batch_files",
    "batch_output_line": "._batch_files",
    "read_batch_output": "._batch_files",
    "chat_create": "._chat",
    "chat_create_stream": "._chat",
    "completions_create": "._completions",
    "completions_create_stream": "._completions",
    "confidential_chat_create": "._confidential",
    "confidential_chat_create_stream": "._confidential",
    "confidential_completions_create": "._confidential",
    "confidential_completions_create_stream": "._confidential",
    "confidential_embeddings_create": "._confidential",
    "confidential_images_generate": "._confidential",
    "embeddings_create": "._embeddings",
    "images_generate": "._images",
    "models_list": "._models",
    "open_router_models_list": "._models",
    "health": "._health",
    "nodes_create": "._nodes",
    "nodes_create_lock": "._nodes",
    "chat_parse": "._parse",
    "confidential_chat_parse": "._parse",
    "ChatParseStream": "._parse_stream",
    "chat_parse_stream": "._parse_stream",
    "confidential_chat_parse_stream": "._parse_stream",
    "FunctionTool": "._tools",
    "tool": "._tools",
    "chat_run_tools": "._tools",
    "confidential_chat_run_tools": "._tools",
    "AtomaSDK": ".sdk",
    "AtomaSyncSDK": "._sync",
    "SyncStream": "._sync",
}

__all__ = [
    "AtomaSDK",
    "AtomaSyncSDK",
    "SyncStream",
    "BatchOutputFile",
    "BatchRequest",
    "BatchResult",
    "ChatParseStream",
    "FunctionTool",
    "batch_output_line",
    "batch_run",
    "chat_create",
    "chat_create_stream",
    "chat_parse",
    "chat_parse_stream",
    "chat_run_tools",
    "completions_create",
    "completions_create_stream",
    "confidential_chat_create",
    "confidential_chat_create_stream",
    "confidential_chat_parse",
    "confidential_chat_parse_stream",
    "confidential_chat_run_tools",
    "confidential_completions_create",
    "confidential_completions_create_stream",
    "confidential_embeddings_create",
    "confidential_images_generate",
    "embeddings_create",
    "health",
    "images_generate",
    "models_list",
    "nodes_create",
    "nodes_create_lock",
    "open_router_models_list",
    "read_batch_output",
    "tool",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'atoma_funcs' has no attribute {name!r}")
    # Kept as a module global: a later `from ... import name` finds it without this call.
    value = globals()[name] = getattr(import_module(module, __name__), name)
    return value


def __dir__() -> list[str]:
    return __all__
