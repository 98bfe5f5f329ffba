"""`chat_create_stream`: a chat completion as a stream of chunks (`POST /v1/chat/completions`,
`stream: true`). Always asks for the usage chunk."""

from __future__ import annotations

from typing import Any, Mapping

from atoma_core._request import Operation, call
from atoma_core._stream import ChatCompletionStream, open_chat_stream
from atoma_core.config import RequestOptions
from atoma_core.core import AtomaCore
from atoma_core.errors import AtomaError
from atoma_core.models.chat import ChatCompletionRequest
from atoma_core.result import Result

from ._chat import CHAT_COMPLETIONS_PATH, prepare_stream

__all__ = ["ChatCompletionStream", "chat_create_stream"]

_OPERATION = Operation(
    "chat_completions_create_stream",
    CHAT_COMPLETIONS_PATH,
    ChatCompletionRequest,
    open_chat_stream,
    prepare=prepare_stream,
    accept="text/event-stream",
)


async def chat_create_stream(
    core: AtomaCore,
    request: ChatCompletionRequest | Mapping[str, Any],
    options: RequestOptions | None = None,
) -> Result[ChatCompletionStream, AtomaError]:
    """Start a streamed chat completion. `Ok(ChatCompletionStream)` once its first event arrives;
    failures before that (status, connect, timeout, an error as the first event) are `Err`,
    retried like `chat_create`. Failures while iterating are raised, with `.partial`."""
    return await call(core, _OPERATION, request, options)
