"""What `chat_run_tools` returns: the final answer, the whole conversation, every tool call run
(with its validated arguments, result or error, and duration) and the usage of all rounds."""

from __future__ import annotations

from typing import Any

import msgspec

from .chat import ChatCompletionResponse
from .usage import Usage

__all__ = ["ToolRun", "ToolRunCall"]


class ToolRunCall(msgspec.Struct, kw_only=True):
    """One tool call the model made. `arguments`: the validated values by parameter name (None if
    they did not validate); `result`: what the function returned; `error`: what went wrong (the
    exception, kept: its text went back to the model); `duration`: seconds the function ran."""

    id: str
    name: str
    arguments: dict[str, Any] | None = None
    result: Any = None
    error: BaseException | None = None
    duration: float = 0.0
    round: int = 0


class ToolRun(msgspec.Struct, kw_only=True):
    """A finished (or, on an error's `.run`, interrupted) tool loop. `response`: the last model
    answer (None if no round finished); `messages`: the conversation as plain JSON-ready dicts;
    `calls`: every call, in the model's order; `usage`: summed over the rounds."""

    response: ChatCompletionResponse | None = None
    messages: list[dict[str, Any]] = msgspec.field(default_factory=list)
    calls: list[ToolRunCall] = msgspec.field(default_factory=list)
    usage: Usage | None = None
    rounds: int = 0
