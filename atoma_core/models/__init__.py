"""Data models (msgspec Structs), loaded from `chat` on first attribute access."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .chat import *  # noqa: F403


def __getattr__(name: str) -> Any:
    from . import chat

    if name in chat.__all__:
        return getattr(chat, name)
    raise AttributeError(f"module 'atoma_core.models' has no attribute {name!r}")
