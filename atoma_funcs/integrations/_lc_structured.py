"""`ChatAtoma.with_structured_output` on the SDK's structured outputs (`chat_parse`): the model is
bound to a `StructuredAsk` (the schema compiled once, and the mode), `ChatAtoma` answers it with
`chat_parse` (or its confidential twin), and the parser hands back `message.parsed`. A stream
asks the same way (`parse_request`) and its whole text is decoded at the end.

LangChain's method names map to chat_parse's modes: "json_schema" (the default) -> json_schema,
"json_mode" -> json_object (the schema in a system message), "function_calling" -> tool."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Mapping

from langchain_core.runnables import RunnableLambda
from langchain_core.utils.function_calling import convert_to_json_schema

from atoma_core.errors import (
    ContentFilterFinishReasonError,
    InvalidRequestError,
    LengthFinishReasonError,
    OutputValidationError,
    StructuredOutputError,
)

from .._parse import parse_request, parse_response
from .._schema import DecodeFailure, OutputSpec, output_spec

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.runnables import Runnable

    from atoma_core.models.chat import ChatCompletionResponse

__all__ = ["MODES", "StructuredAsk", "structured_runnable"]

MODES = {"json_schema": "json_schema", "json_mode": "json_object", "function_calling": "tool"}


class StructuredAsk:
    """What a structured call asks for: `schema` as given, its compiled `spec`, the `mode`, and
    whether `chat_parse` itself can take the schema (a type; a JSON Schema dict is served by its
    building blocks, `parse_request` / `parse_response`)."""

    __slots__ = ("mode", "schema", "spec", "typed")

    def __init__(self, schema: Mapping[str, Any] | type, mode: str) -> None:
        self.schema = schema
        self.mode = mode
        self.typed = False
        if isinstance(schema, Mapping):
            json_schema = convert_to_json_schema(dict(schema))
            self.spec = OutputSpec(dict, json_schema, json.loads, lambda value: value)
            self.spec.name = str(json_schema.get("title") or "output")
        elif _pydantic_v1(schema):  # pydantic.v1 models: LangChain still takes them
            spec = OutputSpec(schema, schema.schema(), schema.parse_raw, schema.parse_obj)  # type: ignore[attr-defined]
            self.spec = spec
        else:
            try:
                self.spec = output_spec(schema)
            except (TypeError, ValueError) as exc:
                raise InvalidRequestError(f"cannot make a JSON Schema for {schema!r}: {exc}") from None
            self.typed = True

    def body(self, request: dict[str, Any]) -> dict[str, Any]:
        """The request that asks for the schema in this mode."""
        return parse_request(request, self.spec, self.mode)

    def parse(self, response: ChatCompletionResponse) -> Any:
        """A response's first choice decoded (the typed error of `chat_parse` if it does not fit)."""
        result = parse_response(response, self.spec, self.mode, response.usage)
        return result.unwrap().choices[0].message.parsed

    def __repr__(self) -> str:
        return f"StructuredAsk({self.spec.name!r}, mode={self.mode!r})"


def _pydantic_v1(schema: Any) -> bool:
    try:
        from pydantic.v1 import BaseModel
    except ImportError:  # pragma: no cover - pydantic 2 ships pydantic.v1
        return False
    return isinstance(schema, type) and issubclass(schema, BaseModel)


# A streamed answer's finish_reason -> chat_parse's error for it.
_CUT_OFF: dict[str, type[StructuredOutputError]] = {
    "length": LengthFinishReasonError,
    "content_filter": ContentFilterFinishReasonError,
}


def _parsed(ask: StructuredAsk, message: AIMessage) -> Any:
    """The answer as the schema's type: `parsed` from `chat_parse`, or a streamed answer decoded."""
    if "parsed" in message.additional_kwargs:
        return message.additional_kwargs["parsed"]
    if ask.mode == "tool":
        calls = [call for call in message.tool_calls if call["name"] == ask.spec.name]
        raw = json.dumps(calls[0]["args"]) if calls else ""
    else:
        raw = str(message.text)
    finish = message.response_metadata.get("finish_reason")
    if finish in _CUT_OFF:  # as chat_parse says it: a cut-off answer is not a misfit
        raise _CUT_OFF[finish](f"the answer was stopped (finish_reason {finish!r})", content=raw)
    try:
        return ask.spec.decode_arguments(raw) if ask.mode == "tool" else ask.spec.decode(raw)
    except DecodeFailure as exc:
        raise OutputValidationError(str(exc), raw=raw) from None


def structured_runnable(
    model: BaseChatModel,
    schema: Mapping[str, Any] | type | None,
    method: str,
    kwargs: dict[str, Any],
) -> tuple[Runnable[Any, Any], Runnable[Any, Any]]:
    """(the model bound to the ask, the parser of its message)."""
    if method not in MODES:
        raise ValueError(f"method must be one of {', '.join(MODES)}, not {method!r}")
    if schema is None:
        raise ValueError("with_structured_output needs a schema")
    ask = StructuredAsk(schema, MODES[method])
    trace = {"kwargs": {"method": method}, "schema": schema}  # LangChain's tracing note
    bound = model.bind(_atoma_structured=ask, ls_structured_output_format=trace, **kwargs)
    return bound, RunnableLambda(lambda message: _parsed(ask, message), name="AtomaStructuredOutput")
