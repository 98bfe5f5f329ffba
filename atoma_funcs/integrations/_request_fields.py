"""A chat request from a framework's loose keyword fields: the schema's own fields validated
into the `ChatCompletionRequest` Struct, anything else sent as `extra_body` (a server's own
parameters, as a framework's `model_kwargs` / `extra_body` carries them)."""

from __future__ import annotations

from typing import Any, Mapping

import msgspec
from msgspec.structs import replace

from atoma_core.config import RequestOptions
from atoma_core.errors import InvalidRequestError
from atoma_core.models.chat import ChatCompletionMessage, ChatCompletionRequest

__all__ = ["chat_request"]

# Set by the streaming and non-streaming functions themselves, never by the caller.
_FIELDS = frozenset(ChatCompletionRequest.__struct_fields__) - {
    "model",
    "messages",
    "stream",
    "stream_options",
}


def chat_request(
    model: str, messages: list[ChatCompletionMessage], fields: Mapping[str, Any]
) -> tuple[ChatCompletionRequest, RequestOptions | None]:
    """The request and its options (None unless there are fields beyond the schema)."""
    known = {k: v for k, v in fields.items() if k in _FIELDS and v is not None}
    extra = {k: v for k, v in fields.items() if k not in _FIELDS and k not in ("stream", "stream_options")}
    try:  # the messages are Structs already: validated once, here, without them
        request = msgspec.convert({"model": model, "messages": [], **known}, ChatCompletionRequest)
    except msgspec.ValidationError as exc:
        raise InvalidRequestError(f"invalid chat request: {exc}") from None
    request = replace(request, messages=messages)
    return request, RequestOptions(extra_body=extra) if extra else None
