"""LangChain <-> the SDK's chat Structs: messages and tools into a request, a response into an
`AIMessage`, a stream chunk into an `AIMessageChunk`. Pure translation: no I/O, no state."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Sequence, cast

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.tool import invalid_tool_call, tool_call, tool_call_chunk
from msgspec import UNSET

from atoma_core.errors import InvalidRequestError, ResponseValidationError
from atoma_core.models import chat as m

if TYPE_CHECKING:
    from atoma_core.models.usage import Usage

__all__ = ["to_message_chunk", "to_ai_message", "to_request_messages", "usage_metadata"]

PROVIDER = "atoma"


def _image_part(block: dict[str, Any]) -> m.ImageContentPart | None:
    """An image block (OpenAI's `image_url`, or LangChain's standard `image` with a URL or
    base64 data) as the `image_url` part Atoma takes."""
    if block.get("type") == "image_url":
        image = block["image_url"]
        url = image if isinstance(image, str) else image.get("url", "")
        detail = UNSET if isinstance(image, str) else image.get("detail", UNSET)
        return m.ImageContentPart(image_url=m.ImageURL(url=url, detail=detail))
    if block.get("type") == "image":
        if block.get("url"):
            return m.ImageContentPart(image_url=m.ImageURL(url=block["url"]))
        data = block.get("base64") or block.get("data")
        if data:
            mime = block.get("mime_type", "image/png")
            return m.ImageContentPart(image_url=m.ImageURL(url=f"data:{mime};base64,{data}"))
    return None


def _content(content: str | list[Any], *, images: bool) -> str | list[m.ContentPart]:
    """A message's content as Atoma takes it: text stays a str; a list of blocks keeps its text
    (and its images where the role allows them). Blocks Atoma has no field for (a `tool_use`
    block repeats `tool_calls`; thinking is the model's own) are left out."""
    if isinstance(content, str):
        return content
    parts: list[m.ContentPart] = []
    for block in content:
        if isinstance(block, str):
            parts.append(m.TextContentPart(text=block))
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(m.TextContentPart(text=block.get("text", "")))
        elif isinstance(block, dict) and images and (image := _image_part(block)) is not None:
            parts.append(image)
        elif isinstance(block, dict) and block.get("type") in ("image", "image_url", "file", "audio"):
            kind = block["type"]
            raise InvalidRequestError(f"Atoma chat does not take {kind} content in this message")
    if all(type(p) is m.TextContentPart for p in parts):
        return "".join(p.text for p in parts)  # type: ignore[union-attr]
    return parts


def _tool_calls(message: AIMessage) -> list[m.ToolCall]:
    calls = [
        m.ToolCall(
            id=call.get("id") or "",
            function=m.ToolCallFunction(name=call["name"], arguments=json.dumps(call["args"])),
        )
        for call in message.tool_calls
    ]
    calls.extend(
        m.ToolCall(
            id=bad.get("id") or "", function=m.ToolCallFunction(bad.get("name") or "", bad["args"] or "")
        )
        for bad in message.invalid_tool_calls
    )
    return calls


def _name(message: BaseMessage) -> str | Any:
    return message.name if message.name else UNSET


def _one(message: BaseMessage) -> m.ChatCompletionMessage:
    if isinstance(message, HumanMessage):
        return m.UserMessage(content=_content(message.content, images=True), name=_name(message))
    if isinstance(message, SystemMessage):
        return m.SystemMessage(content=_content(message.content, images=False), name=_name(message))
    if isinstance(message, AIMessage):
        calls = _tool_calls(message)
        return m.AssistantMessage(
            content=_content(message.content, images=False),
            name=_name(message),
            tool_calls=calls if calls else UNSET,
        )
    if isinstance(message, ToolMessage):
        content = message.content
        text = content if isinstance(content, str) else _content(content, images=False)
        return m.ToolMessage(
            content=text if isinstance(text, str) else json.dumps(content), tool_call_id=message.tool_call_id
        )
    if isinstance(message, ChatMessage):
        role = {"human": "user", "ai": "assistant"}.get(message.role, message.role)
        roles = {"user": HumanMessage, "assistant": AIMessage, "system": SystemMessage}
        if role == "developer":
            return m.DeveloperMessage(content=_content(message.content, images=False))
        if role in roles:
            return _one(roles[role](content=message.content, name=message.name))
        raise InvalidRequestError(f"Atoma chat has no role {message.role!r}")
    if isinstance(message, FunctionMessage):
        raise InvalidRequestError("FunctionMessage is OpenAI's retired format: use ToolMessage")
    raise InvalidRequestError(f"Atoma chat cannot send a {type(message).__name__}")


def to_request_messages(messages: Sequence[BaseMessage]) -> list[m.ChatCompletionMessage]:
    """LangChain messages as the request's messages (`InvalidRequestError` for what has no field)."""
    return [_one(message) for message in messages]


def usage_metadata(usage: Usage) -> UsageMetadata:
    """Atoma's token counts in LangChain's shape (cached prompt tokens as `cache_read`)."""
    counts = {
        "input_tokens": usage.prompt_tokens,
        "output_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
    meta = cast("UsageMetadata", counts)  # its token details are optional keys
    details = usage.prompt_tokens_details
    if details is not None and details.cached_tokens is not None:
        meta["input_token_details"] = {"cache_read": details.cached_tokens}
    out = usage.completion_tokens_details
    if out is not None and out.reasoning_tokens is not None:
        meta["output_token_details"] = {"reasoning": out.reasoning_tokens}
    return meta


def _parsed_calls(calls: list[m.ToolCall] | None) -> tuple[list[Any], list[Any]]:
    good: list[Any] = []
    bad: list[Any] = []
    for call in calls or ():
        fn = call.function
        try:
            args = json.loads(fn.arguments) if fn.arguments else {}
        except ValueError as exc:
            bad.append(invalid_tool_call(name=fn.name, args=fn.arguments, id=call.id, error=str(exc)))
            continue
        if isinstance(args, dict):
            good.append(tool_call(name=fn.name, args=args, id=call.id))
        else:
            bad.append(invalid_tool_call(name=fn.name, args=fn.arguments, id=call.id, error="not an object"))
    return good, bad


def to_ai_message(response: m.ChatCompletionResponse, parsed: Any = None) -> AIMessage:
    """The first choice of a response as an `AIMessage`: text, tool calls (unparsable arguments
    as `invalid_tool_calls`), usage, and finish_reason / model / `response_hash` as metadata."""
    if not response.choices:
        raise ResponseValidationError("the chat response has no choices")
    choice = response.choices[0]
    message = choice.message
    calls, bad = _parsed_calls(message.tool_calls)
    extra: dict[str, Any] = {}
    if message.refusal is not None:
        extra["refusal"] = message.refusal
    if message.reasoning_content:
        extra["reasoning_content"] = message.reasoning_content
    if parsed is not None:
        extra["parsed"] = parsed
    return AIMessage(
        content=message.content or "",
        id=response.id or None,
        tool_calls=calls,
        invalid_tool_calls=bad,
        additional_kwargs=extra,
        usage_metadata=None if response.usage is None else usage_metadata(response.usage),
        response_metadata={
            "finish_reason": choice.finish_reason,
            "model_name": response.model,
            "model_provider": PROVIDER,
            "response_hash": response.response_hash,
            "system_fingerprint": response.system_fingerprint,
        },
    )


def to_message_chunk(chunk: m.ChatCompletionChunk) -> AIMessageChunk:
    """One stream chunk as an `AIMessageChunk`.

    Metadata LangChain merges by concatenation (`model_name`, `response_hash`) is set once, on
    the chunk with the finish_reason; usage once, on the final usage chunk."""
    if not chunk.choices:
        usage = None if chunk.usage is None else usage_metadata(chunk.usage)
        return AIMessageChunk(content="", usage_metadata=usage, id=chunk.id or None)
    choice = chunk.choices[0]
    delta = choice.delta
    text = delta.content or ""
    pieces = [
        tool_call_chunk(
            name=None if piece.function is None else piece.function.name,
            args=None if piece.function is None else piece.function.arguments,
            id=piece.id,
            index=piece.index,
        )
        for piece in delta.tool_calls or ()
    ]
    metadata: dict[str, Any] = {}
    if choice.finish_reason is not None:
        metadata = {
            "finish_reason": choice.finish_reason,
            "model_name": chunk.model,
            "model_provider": PROVIDER,
            "response_hash": chunk.response_hash,
        }
    extra: dict[str, Any] = {}
    if delta.reasoning_content:
        extra["reasoning_content"] = delta.reasoning_content
    message = AIMessageChunk(
        content=text,
        id=chunk.id or None,
        tool_call_chunks=pieces,
        response_metadata=metadata,
        additional_kwargs=extra,
    )
    if chunk.usage is not None:  # a server that sends usage on the finish chunk itself
        message.usage_metadata = usage_metadata(chunk.usage)
    return message
