"""Data models (msgspec Structs), loaded from `chat` on first attribute access."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .chat import *  # noqa: F403
    from .meta import ResponseMeta as ResponseMeta


def __getattr__(name: str) -> Any:
    if name == "ResponseMeta":
        return import_module(".meta", __name__).ResponseMeta
    chat = import_module(".chat", __name__)
    if name in chat.__all__:
        return getattr(chat, name)
    raise AttributeError(f"module 'atoma_core.models' has no attribute {name!r}")
