"""Chat completions (`POST /v1/chat/completions`): `chat_create` and `chat_create_stream`, plus the
request fixes the Atoma proxy needs (shared with the confidential chat functions)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from msgspec import UNSET
from msgspec.structs import replace

from atoma_core._body import json_response
from atoma_core._operation import Operation
from atoma_core._request import call
from atoma_core.errors import InvalidRequestError
from atoma_core.models.chat import (
    AssistantMessage,
    ChatCompletionRequest,
    ChatCompletionResponse,
    StreamOptions,
)

if TYPE_CHECKING:
    from atoma_core._stream import ChatCompletionStream
    from atoma_core.config import RequestOptions
    from atoma_core.core import AtomaCore
    from atoma_core.errors import AtomaError
    from atoma_core.result import Result
    from atoma_core.types import ChatCompletionRequestParam

__all__ = ["chat_create", "chat_create_stream", "prepare_create", "prepare_stream"]

CHAT_COMPLETIONS_PATH = "/v1/chat/completions"


def _null_tool_call_content(message: object) -> bool:
    return (
        type(message) is AssistantMessage
        and bool(message.tool_calls)
        and (message.content is None or message.content is UNSET)
    )


def _fill_tool_call_content(request: ChatCompletionRequest) -> ChatCompletionRequest:
    """Send `content: ""` on assistant tool-call messages: the proxy answers 400 to null content."""
    for message in request.messages:  # a plain loop: this runs on every request
        if _null_tool_call_content(message):
            break
    else:
        return request
    messages = [replace(m, content="") if _null_tool_call_content(m) else m for m in request.messages]
    return replace(request, messages=messages)


def prepare_create(request: ChatCompletionRequest) -> ChatCompletionRequest:
    """A non-streaming request: `stream` is always sent, as false (True is refused, not ignored)."""
    if request.stream is True:
        raise InvalidRequestError("stream=True: use chat_create_stream (sdk.chat.create_stream) to stream")
    return replace(_fill_tool_call_content(request), stream=False)


def stream_options(options: StreamOptions | None | Any) -> StreamOptions:
    """The user's stream options with `include_usage: true`, so usage is tracked on every stream."""
    if isinstance(options, StreamOptions):
        return replace(options, include_usage=True)
    return StreamOptions(include_usage=True)


def prepare_stream(request: ChatCompletionRequest) -> ChatCompletionRequest:
    """A streaming request: `stream: true` and `include_usage: true`, merged with the user's options."""
    return replace(
        _fill_tool_call_content(request), stream=True, stream_options=stream_options(request.stream_options)
    )


_CREATE = Operation(
    "chat_completions_create",
    "POST",
    CHAT_COMPLETIONS_PATH,
    json_response(ChatCompletionResponse),
    request_type=ChatCompletionRequest,
    idempotent=True,  # inference: a copy changes nothing (hedging may send one)
    prepare=prepare_create,
)


@functools.cache
def _stream_operation() -> Operation[ChatCompletionRequest, ChatCompletionStream]:
    from atoma_core._stream import open_chat_stream  # stream code loads on the first stream only

    return Operation(
        "chat_completions_create_stream",
        "POST",
        CHAT_COMPLETIONS_PATH,
        open_chat_stream(),
        request_type=ChatCompletionRequest,
        idempotent=True,  # inference: a copy changes nothing (hedging may send one)
        prepare=prepare_stream,
        accept="text/event-stream",
    )


async def chat_create(
    core: AtomaCore,
    request: ChatCompletionRequest | ChatCompletionRequestParam,
    options: RequestOptions | None = None,
) -> Result[ChatCompletionResponse, AtomaError]:
    """Create a chat completion. Returns `Ok(ChatCompletionResponse)` or `Err(AtomaError)`; never raises
    (except `asyncio.CancelledError`).

    `request` is a `ChatCompletionRequest` or a dict, typed `ChatCompletionRequestParam` for type
    checkers (`atoma_core.types`); at run time any mapping is accepted and validated strictly."""
    return await call(core, _CREATE, request, options)


async def chat_create_stream(
    core: AtomaCore,
    request: ChatCompletionRequest | ChatCompletionRequestParam,
    options: RequestOptions | None = None,
) -> Result[ChatCompletionStream, AtomaError]:
    """Start a streamed chat completion. `Ok(ChatCompletionStream)` once its first event arrives;
    failures before that (status, connect, timeout, an error as the first event) are `Err`,
    retried like `chat_create`. Failures while iterating are raised, with `.partial`."""
    return await call(core, _stream_operation(), request, options)
