"""GenAI semantic-convention attributes read off the SDK's own values: the validated request, the
decoded answer, opt-in message content. Pure functions over msgspec Structs, no OpenTelemetry
import, so they are tested (and cost) the same with or without the `otel` extra.
"""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import urlsplit

import msgspec

__all__ = [
    "OPERATIONS",
    "PROVIDER",
    "input_messages",
    "output_messages",
    "request_attributes",
    "response_attributes",
    "server_attributes",
]

PROVIDER = "atoma"

OPERATIONS: dict[str, tuple[str, bool]] = {
    "chat_completions_create": ("chat", False),
    "chat_completions_create_stream": ("chat", True),
    "completions_create": ("text_completion", False),
    "completions_create_stream": ("text_completion", True),
    "embeddings_create": ("embeddings", False),
    "confidential_chat_completions_create": ("chat", False),
    "confidential_chat_completions_create_stream": ("chat", True),
    "confidential_embeddings_create": ("embeddings", False),
}
"""operation_id -> (gen_ai.operation.name, streamed). Operations not here get no span."""

# Request field -> attribute, for the plain numeric settings, recorded when set.
_SETTINGS = (
    ("temperature", "gen_ai.request.temperature"),
    ("top_p", "gen_ai.request.top_p"),
    ("frequency_penalty", "gen_ai.request.frequency_penalty"),
    ("presence_penalty", "gen_ai.request.presence_penalty"),
    ("seed", "gen_ai.request.seed"),
    ("max_tokens", "gen_ai.request.max_tokens"),
    ("max_completion_tokens", "gen_ai.request.max_tokens"),  # wins over max_tokens: later
)
_JSON_FORMATS = frozenset({"json_object", "json_schema"})
_DEFAULT_PORTS = {"https": 443, "http": 80}


def _set(value: Any) -> bool:
    return value is not None and value is not msgspec.UNSET


@functools.lru_cache(maxsize=64)
def server_attributes(url: str) -> dict[str, Any]:
    """`server.address` and `server.port` of a request URL (parsed once per URL)."""
    parts = urlsplit(url)
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    attributes: dict[str, Any] = {"server.address": parts.hostname or ""}
    if port is not None:
        attributes["server.port"] = port
    return attributes


def request_attributes(request: Any) -> dict[str, Any]:
    """The request settings that were set: max tokens, temperature, top_p, stop sequences, ..."""
    attributes: dict[str, Any] = {}
    for field, key in _SETTINGS:
        value = getattr(request, field, None)
        if _set(value):
            attributes[key] = value
    stop: Any = getattr(request, "stop", None)
    if _set(stop):
        attributes["gen_ai.request.stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    n = getattr(request, "n", None)
    if _set(n) and n != 1:
        attributes["gen_ai.request.choice.count"] = n
    response_format: Any = getattr(request, "response_format", None)
    if _set(response_format):
        kind = response_format.type
        attributes["gen_ai.output.type"] = "json" if kind in _JSON_FORMATS else kind
    encoding_format = getattr(request, "encoding_format", None)
    if _set(encoding_format):
        attributes["gen_ai.request.encoding_formats"] = [encoding_format]
    dimensions = getattr(request, "dimensions", None)
    if _set(dimensions):
        attributes["gen_ai.embeddings.dimension.count"] = dimensions
    return attributes


def response_attributes(response: Any, usage: Any) -> dict[str, Any]:
    """Id, model, finish reasons and token counts of an answer (whole, or what a stream got)."""
    attributes: dict[str, Any] = {}
    response_id = getattr(response, "id", None)
    if response_id:
        attributes["gen_ai.response.id"] = response_id
    model = getattr(response, "model", None)
    if model:
        attributes["gen_ai.response.model"] = model
    choices = getattr(response, "choices", None)
    if choices:
        reasons = [c.finish_reason for c in choices if c.finish_reason is not None]
        if reasons:
            attributes["gen_ai.response.finish_reasons"] = reasons
    if usage is not None:
        attributes["gen_ai.usage.input_tokens"] = usage.prompt_tokens
        completion_tokens = getattr(usage, "completion_tokens", None)  # embeddings have none
        if completion_tokens is not None:
            attributes["gen_ai.usage.output_tokens"] = completion_tokens
    return attributes


# ------------------------------------------------------------------ content (opt-in only)


def input_messages(request: Any) -> str | None:
    """`gen_ai.input.messages` as JSON: chat messages, or a completion prompt as a user message."""
    messages = getattr(request, "messages", None)
    if messages is not None:
        return _json([_input_message(m) for m in messages])
    prompt = getattr(request, "prompt", None)
    if isinstance(prompt, str):
        prompt = [prompt]
    if isinstance(prompt, list) and all(isinstance(p, str) for p in prompt):
        return _json([{"role": "user", "parts": [_text(p)]} for p in prompt])
    return None  # embeddings input and token-id prompts are not messages


def output_messages(response: Any) -> str | None:
    """`gen_ai.output.messages` as JSON: one assistant message per choice."""
    choices = getattr(response, "choices", None)
    if not choices:
        return None
    out = []
    for choice in choices:
        message = getattr(choice, "message", None)
        if message is None:  # a text completion choice
            parts = [_text(choice.text)]
        else:
            parts = [_text(message.content)] if message.content else []
            parts += [_tool_call(call) for call in message.tool_calls or ()]
        out.append({"role": "assistant", "parts": parts, "finish_reason": choice.finish_reason or ""})
    return _json(out)


def _input_message(message: Any) -> dict[str, Any]:
    role = type(message).__struct_config__.tag
    parts: list[dict[str, Any]] = []
    content = message.content
    if isinstance(content, str) and content:
        parts.append(
            {"type": "tool_call_response", "id": _or_empty(message.tool_call_id), "response": content}
            if role == "tool"
            else _text(content)
        )
    elif isinstance(content, list):
        parts += [_content_part(part) for part in content]
    for call in getattr(message, "tool_calls", None) or ():
        parts.append(_tool_call(call))
    return {"role": role, "parts": parts}


def _content_part(part: Any) -> dict[str, Any]:
    image = getattr(part, "image_url", None)
    if image is not None:
        return {"type": "uri", "modality": "image", "uri": image.url}
    return _text(part.text)


def _or_empty(value: Any) -> Any:
    return value if _set(value) else ""


def _text(text: Any) -> dict[str, Any]:
    return {"type": "text", "content": text}


def _tool_call(call: Any) -> dict[str, Any]:
    function = call.function
    return {"type": "tool_call", "id": call.id, "name": function.name, "arguments": function.arguments}


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()
