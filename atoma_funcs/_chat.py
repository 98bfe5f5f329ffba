"""What both chat operations share: the path and the request fixes the Atoma proxy needs."""

from __future__ import annotations

from msgspec import UNSET
from msgspec.structs import replace

from atoma_core.models.chat import AssistantMessage, ChatCompletionRequest, StreamOptions

CHAT_COMPLETIONS_PATH = "/v1/chat/completions"


def _null_tool_call_content(message: object) -> bool:
    return (
        type(message) is AssistantMessage
        and bool(message.tool_calls)
        and (message.content is None or message.content is UNSET)
    )


def _fill_tool_call_content(request: ChatCompletionRequest) -> ChatCompletionRequest:
    """Send `content: ""` on assistant tool-call messages: the proxy answers 400 to null content."""
    if not any(_null_tool_call_content(m) for m in request.messages):
        return request
    messages = [replace(m, content="") if _null_tool_call_content(m) else m for m in request.messages]
    return replace(request, messages=messages)


def prepare_create(request: ChatCompletionRequest) -> ChatCompletionRequest:
    """A non-streaming request: `stream` is always sent, as false."""
    return replace(_fill_tool_call_content(request), stream=False)


def prepare_stream(request: ChatCompletionRequest) -> ChatCompletionRequest:
    """A streaming request: `stream: true` and `include_usage: true`, merged with the user's options."""
    options = request.stream_options
    if isinstance(options, StreamOptions):
        options = replace(options, include_usage=True)
    else:
        options = StreamOptions(include_usage=True)
    return replace(_fill_tool_call_content(request), stream=True, stream_options=options)
