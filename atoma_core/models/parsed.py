"""Structured-output answers (`chat_parse`): a chat completion whose messages carry `parsed`, the
content decoded into the caller's type `T`. Same wire fields as `ChatCompletionResponse`."""

from __future__ import annotations

from typing import Any, Generic, Mapping, TypeVar

import msgspec

from .chat import ChatCompletionChoice, ChatCompletionResponse, ChatCompletionResponseMessage

__all__ = ["ParsedChatCompletion", "ParsedChatCompletionMessage", "ParsedChoice"]

T = TypeVar("T")


class ParsedChatCompletionMessage(ChatCompletionResponseMessage, Generic[T], gc=False):
    """An assistant message with `parsed`: the content as a `T`; None on a refusal (`refusal`
    says why) or before validation (a stream's `partial`)."""

    parsed: T | None = None


class ParsedChoice(ChatCompletionChoice, Generic[T], gc=False):
    """A choice of a `ParsedChatCompletion`: its message carries `parsed`."""

    message: ParsedChatCompletionMessage[T]


class ParsedChatCompletion(ChatCompletionResponse, Generic[T], dict=True):
    """A chat completion whose choices carry `message.parsed`. With validation retries, `usage`
    counts every attempt. `to_dict()` / `to_json()` include `parsed` as plain data (a pydantic
    model's `model_dump`)."""

    choices: list[ParsedChoice[T]]  # type: ignore[assignment]  # a narrower list than the base's

    def to_dict(self) -> dict[str, Any]:
        return msgspec.to_builtins(self, enc_hook=_plain)  # type: ignore[no-any-return]

    def to_json(self, *, indent: int = 0) -> str:
        encoded = msgspec.json.encode(self, enc_hook=_plain)
        return (msgspec.json.format(encoded, indent=indent) if indent > 0 else encoded).decode()


def _plain(value: Any) -> Any:
    """What msgspec cannot encode in a parsed answer: a pydantic model, a read-only mapping."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if isinstance(value, Mapping):
        return dict(value)
    raise NotImplementedError(f"cannot encode {type(value).__name__}")


def parsed_from(response: ChatCompletionResponse) -> ParsedChatCompletion[Any]:
    """The same answer as a `ParsedChatCompletion` (parsed still None), keeping its `meta`."""
    choices: list[ParsedChoice[Any]] = [
        ParsedChoice(
            message=ParsedChatCompletionMessage(
                role=c.message.role,
                content=c.message.content,
                refusal=c.message.refusal,
                reasoning_content=c.message.reasoning_content,
                tool_calls=c.message.tool_calls,
            ),
            index=c.index,
            finish_reason=c.finish_reason,
            logprobs=c.logprobs,
            stop_reason=c.stop_reason,
        )
        for c in response.choices
    ]
    parsed: ParsedChatCompletion[Any] = ParsedChatCompletion(
        choices=choices,
        id=response.id,
        object=response.object,
        created=response.created,
        model=response.model,
        usage=response.usage,
        system_fingerprint=response.system_fingerprint,
        service_tier=response.service_tier,
        response_hash=response.response_hash,
        signature=response.signature,
    )
    meta = response.__dict__.get("meta")
    if meta is not None:
        parsed.__dict__["meta"] = meta
    return parsed
