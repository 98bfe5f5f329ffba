"""Structured outputs: `chat_parse` asks for an answer shaped like a type `T` and returns it
decoded (`message.parsed`): the chat operation (or its confidential twin) on the one request
path, its answer decoded straight into a `ParsedChatCompletion`.

Three ways to ask (`mode`): "json_schema" (the strict schema as `response_format`, which vLLM
and llama.cpp turn into guided decoding), "json_object" (the schema in a system message, for
servers without guided decoding, and also as `response_format.schema`, which servers that take
only json_object, such as llama-cpp-python, turn into a grammar; others ignore it) and "tool"
(one forced call of a tool whose parameters are `T`). A finish_reason of "length" or
"content_filter" and content that does not fit `T` are typed errors; `max_validation_retries`
asks again with the decoder's complaint appended.
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any, Literal, Mapping, TypeVar

import msgspec

from atoma_core._body import json_response
from atoma_core._request import call
from atoma_core.errors import (
    ContentFilterFinishReasonError,
    InvalidRequestError,
    LengthFinishReasonError,
    OutputValidationError,
    ResponseValidationError,
    StructuredOutputError,
)
from atoma_core.models.parsed import ParsedChatCompletion, parsed_from
from atoma_core.models.usage import Usage
from atoma_core.result import Err, Ok

from ._schema import DecodeFailure, OutputSpec, output_spec

if TYPE_CHECKING:
    from atoma_core._operation import Operation
    from atoma_core.config import RequestOptions
    from atoma_core.core import AtomaCore
    from atoma_core.errors import AtomaError
    from atoma_core.models.chat import ChatCompletionRequest, ChatCompletionResponse
    from atoma_core.result import Result
    from atoma_core.types import ChatCompletionRequestParam

__all__ = ["ParseMode", "chat_parse", "confidential_chat_parse", "parse_request", "parse_response"]

T = TypeVar("T")
ParseMode = Literal["json_schema", "json_object", "tool"]
_MODES = ("json_schema", "json_object", "tool")

JSON_OBJECT_PROMPT = (
    "Answer with a single JSON value, and nothing else, that matches this JSON Schema:\n{schema}"
)
RETRY_PROMPT = (
    "Your answer does not match the required JSON Schema: {error}\nAnswer again with only the corrected JSON."
)


def spec_for(response_format: Any, mode: str) -> OutputSpec | InvalidRequestError:
    """The compiled spec of `response_format`, or why it cannot be used."""
    if mode not in _MODES:
        return InvalidRequestError(f"mode must be one of {', '.join(_MODES)}, not {mode!r}")
    try:
        return output_spec(response_format)
    except (TypeError, ValueError, NameError) as exc:  # NameError: an unresolvable annotation
        return InvalidRequestError(f"cannot make a JSON Schema for {response_format!r}: {exc}")


def as_dict(request: ChatCompletionRequest | Mapping[str, Any]) -> dict[str, Any]:
    """A shallow copy of the request as a dict (a Struct turned into plain data)."""
    if isinstance(request, msgspec.Struct):
        return msgspec.to_builtins(request)  # type: ignore[no-any-return]
    return dict(request)


def parse_request(body: dict[str, Any], spec: OutputSpec, mode: str) -> dict[str, Any]:
    """The request that asks for `spec` in this mode (a new dict; `body` is left alone)."""
    body = dict(body)
    if mode == "json_schema":
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": spec.name, "schema": spec.schema, "strict": True},
        }
    elif mode == "json_object":
        prompt = JSON_OBJECT_PROMPT.format(schema=json.dumps(spec.schema))
        body["messages"] = [{"role": "system", "content": prompt}, *body.get("messages", ())]
        # llama-cpp-python's spelling of a schema-constrained answer (it has no json_schema type).
        body["response_format"] = {"type": "json_object", "schema": spec.schema}
    else:
        function = {"name": spec.name, "parameters": spec.parameters, "strict": True}
        body["tools"] = [*(body.get("tools") or ()), {"type": "function", "function": function}]
        body["tool_choice"] = {"type": "function", "function": {"name": spec.name}}
    return body


def ask_for(
    request: ChatCompletionRequest | Mapping[str, Any], response_format: Any, mode: str
) -> tuple[OutputSpec, dict[str, Any]] | InvalidRequestError:
    """The spec of `response_format` and the request body that asks for it in `mode` (for
    `chat_parse` and `chat_parse_stream` alike), or why `response_format` cannot be used."""
    spec = spec_for(response_format, mode)
    if isinstance(spec, InvalidRequestError):
        return spec
    return spec, parse_request(as_dict(request), spec, mode)


def add_usage(total: Usage | None, more: Usage | None) -> Usage | None:
    """Token counts of two calls added up, their breakdowns (cached, reasoning tokens) too; a
    count one side lacks is the other's (None only if both are None)."""
    return _added(total, more)  # type: ignore[no-any-return]


def _added(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return a if b is None else b
    if isinstance(a, msgspec.Struct):
        return type(a)(**{name: _added(getattr(a, name), getattr(b, name)) for name in a.__struct_fields__})
    return a + b


@functools.cache
def _operation(confidential: bool) -> Operation[Any, ParsedChatCompletion[Any]]:
    """The chat operation (plain or confidential), its answer decoded straight into a
    `ParsedChatCompletion` (no copy of the response per call)."""
    if confidential:
        from ._confidential import _CHAT as base
        from ._confidential import _opened

        handle = json_response(ParsedChatCompletion, decode=_opened(ParsedChatCompletion))
    else:
        from ._chat import _CREATE as base

        handle = json_response(ParsedChatCompletion)
    return base.answered_by(handle)


def _tool_arguments(message: Any, name: str) -> str | None:
    for tool_call in message.tool_calls or ():
        if tool_call.function.name == name:
            return str(tool_call.function.arguments)
    return None


def _answer_text(message: Any, spec: OutputSpec, mode: str) -> str:
    """The text of a message that is decoded into `T` (what `OutputValidationError.raw` holds)."""
    text = _tool_arguments(message, spec.name) if mode == "tool" else None
    return text if text is not None else message.content or ""


def parse_response(
    response: ChatCompletionResponse, spec: OutputSpec, mode: str, usage: Usage | None
) -> Result[ParsedChatCompletion[Any], StructuredOutputError | ResponseValidationError]:
    """Decode every choice into `T`: Ok with `parsed` set (None on a refusal), or the typed error
    of the first choice that failed (`ResponseValidationError` if there is no choice at all)."""
    parsed = response if isinstance(response, ParsedChatCompletion) else parsed_from(response)
    parsed.usage = usage
    if not parsed.choices:  # not the model's misfit (asking again would not help): the server's
        return Err(ResponseValidationError("the chat response has no choices"))
    for choice in parsed.choices:
        message = choice.message
        text = _tool_arguments(message, spec.name) if mode == "tool" else message.content
        if choice.finish_reason == "length":
            error: StructuredOutputError = LengthFinishReasonError(
                "the answer was cut off by the token limit (finish_reason 'length'): raise max_tokens",
                response=parsed,
                content=text if text is not None else message.content,
                usage=usage,
            )
            return Err(error)
        if choice.finish_reason == "content_filter":
            error = ContentFilterFinishReasonError(
                "the answer was stopped by the content filter (finish_reason 'content_filter')",
                response=parsed,
                content=text if text is not None else message.content,
                usage=usage,
            )
            return Err(error)
        if message.refusal is not None:
            continue
        if text is None:
            what = f"a call of the tool {spec.name!r}" if mode == "tool" else "content"
            raw = message.content or ""
            return Err(
                OutputValidationError(f"the answer has no {what}", raw=raw, response=parsed, usage=usage)
            )
        try:
            message.parsed = spec.decode_arguments(text) if mode == "tool" else spec.decode(text)
        except DecodeFailure as exc:
            return Err(OutputValidationError(str(exc), raw=text, response=parsed, usage=usage))
    return Ok(parsed)


def retry_messages(
    response: ChatCompletionResponse, error: OutputValidationError, spec: OutputSpec, mode: str
) -> list[Any]:
    """What to append to ask again: the model's answer that did not fit (with several choices,
    the one the complaint is about), then the validation complaint."""
    misfits = [c.message for c in response.choices if _answer_text(c.message, spec, mode) == error.raw]
    message = misfits[0] if misfits else response.choices[0].message
    complaint = RETRY_PROMPT.format(error=error.message)
    calls = message.tool_calls or []
    if mode == "tool" and calls:
        answers = [{"role": "tool", "tool_call_id": c.id, "content": complaint} for c in calls]
        return [message.to_param(), *answers]
    return [{"role": "assistant", "content": message.content or ""}, {"role": "user", "content": complaint}]


async def run_parse(
    confidential: bool,
    core: AtomaCore,
    request: ChatCompletionRequest | Mapping[str, Any],
    response_format: Any,
    options: RequestOptions | None,
    mode: str,
    max_validation_retries: int,
) -> Result[ParsedChatCompletion[Any], AtomaError]:
    asked = ask_for(request, response_format, mode)
    if isinstance(asked, InvalidRequestError):
        return Err(asked)
    if max_validation_retries < 0:
        return Err(InvalidRequestError("max_validation_retries must be >= 0"))
    spec, body = asked
    operation = _operation(confidential)
    usage: Usage | None = None
    for attempt in range(max_validation_retries + 1):
        result = await call(core, operation, body, options)
        if isinstance(result, Err):
            return result
        response = result.value
        usage = add_usage(usage, response.usage)
        parsed = parse_response(response, spec, mode, usage)
        if isinstance(parsed, Ok):
            return parsed
        error = parsed.error
        if not isinstance(error, OutputValidationError) or attempt == max_validation_retries:
            return Err(error)
        body = {**body, "messages": [*body["messages"], *retry_messages(response, error, spec, mode)]}
    raise AssertionError("unreachable")  # pragma: no cover


async def chat_parse(
    core: AtomaCore,
    request: ChatCompletionRequest | ChatCompletionRequestParam,
    response_format: type[T],
    *,
    options: RequestOptions | None = None,
    mode: ParseMode = "json_schema",
    max_validation_retries: int = 0,
) -> Result[ParsedChatCompletion[T], AtomaError]:
    """Ask for an answer shaped like `response_format` (a msgspec Struct, dataclass, TypedDict,
    pydantic model, or a list / Literal / union of these) and return it decoded in
    `choices[i].message.parsed`. `Err(LengthFinishReasonError | ContentFilterFinishReasonError |
    OutputValidationError)` (all `StructuredOutputError`s) when the answer is cut off, filtered or
    does not fit; with `max_validation_retries=N` a misfit is sent back to the model up to N times.
    `mode`: "json_schema" (default), "json_object" or "tool" (see the module docstring)."""
    return await run_parse(False, core, request, response_format, options, mode, max_validation_retries)


async def confidential_chat_parse(
    core: AtomaCore,
    request: ChatCompletionRequest | ChatCompletionRequestParam,
    response_format: type[T],
    *,
    options: RequestOptions | None = None,
    mode: ParseMode = "json_schema",
    max_validation_retries: int = 0,
) -> Result[ParsedChatCompletion[T], AtomaError]:
    """`chat_parse` over confidential chat: the request, schema included, travels encrypted to a
    node in a TEE. Needs the `confidential` extra."""
    return await run_parse(True, core, request, response_format, options, mode, max_validation_retries)
