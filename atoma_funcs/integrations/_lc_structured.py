"""`ChatAtoma.with_structured_output`: the model bound to a `json_schema` response_format, a
forced tool call or `json_object`, and the parser that turns its answer into the schema's type."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import JsonOutputKeyToolsParser, PydanticToolsParser
from langchain_core.utils.function_calling import convert_to_openai_function, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.runnables import Runnable

__all__ = ["response_format", "structured_runnable"]

METHODS = ("json_schema", "function_calling", "json_mode")


def response_format(schema: Mapping[str, Any] | type, strict: bool | None) -> dict[str, Any]:
    """The `json_schema` response_format for a pydantic model, TypedDict or JSON Schema dict."""
    if isinstance(schema, Mapping) and schema.get("type") == "json_schema" and "json_schema" in schema:
        return dict(schema)
    function = convert_to_openai_function(schema, strict=strict)
    spec: dict[str, Any] = {"name": function["name"], "schema": function.pop("parameters", {})}
    if function.get("description"):
        spec["description"] = function["description"]
    if strict is not None:
        spec["strict"] = strict
    return {"type": "json_schema", "json_schema": spec}


def structured_runnable(
    model: BaseChatModel,
    schema: Mapping[str, Any] | type | None,
    method: str,
    strict: bool | None,
    kwargs: dict[str, Any],
) -> tuple[Runnable[Any, Any], Runnable[Any, Any]]:
    """(the bound model, the parser of its message)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    if schema is None:
        raise ValueError("with_structured_output needs a schema")
    pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
    trace = {"kwargs": {"method": method, "strict": strict}, "schema": schema}
    parser: Runnable[Any, Any]
    if method == "function_calling":
        name = convert_to_openai_tool(schema)["function"]["name"]
        bound = model.bind_tools(
            [schema],  # type: ignore[list-item]  # a TypedDict or pydantic class: LangChain takes both
            tool_choice=name,
            strict=strict,
            ls_structured_output_format=trace,
            **kwargs,
        )
        if pydantic:
            parser = PydanticToolsParser(tools=[schema], first_tool_only=True)  # type: ignore[list-item]
        else:
            parser = JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
        return bound, parser
    if method == "json_mode":
        fmt: dict[str, Any] = {"type": "json_object"}
    else:
        fmt = response_format(schema, strict)
    bound = model.bind(response_format=fmt, ls_structured_output_format=trace, **kwargs)
    parser = PydanticOutputParser(pydantic_object=schema) if pydantic else JsonOutputParser()  # type: ignore[arg-type]
    return bound, parser
