"""Tools the model can call, and the loop that runs them: `@tool` turns a typed function into a
tool (strict parameters schema from its signature, descriptions from its docstring) and
`chat_run_tools` calls the model, runs the calls it makes (concurrently), sends the results back
and calls again, until an answer without tool calls. Knows nothing of HTTP: each round is a
`chat_create` (or `confidential_chat_create`) call.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import re
import sys
import time
import typing
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Coroutine, Iterable, Literal, Mapping

import msgspec

from atoma_core.errors import InvalidRequestError, ResponseValidationError, ToolExecutionError, ToolLoopError
from atoma_core.models.tool_run import ToolRun, ToolRunCall
from atoma_core.result import Err, Ok

from ._parse import add_usage, as_dict
from ._schema import DecodeFailure, OutputSpec, mentions, output_spec, strict_schema

if TYPE_CHECKING:
    from atoma_core.config import RequestOptions
    from atoma_core.core import AtomaCore
    from atoma_core.errors import AtomaError
    from atoma_core.models.chat import ChatCompletionRequest, ChatCompletionResponse, ToolCall
    from atoma_core.result import Result
    from atoma_core.types import ChatCompletionRequestParam

__all__ = ["FunctionTool", "chat_run_tools", "confidential_chat_run_tools", "tool"]

OnToolError = Literal["return", "raise"]
Create = Callable[..., Awaitable["Result[ChatCompletionResponse, AtomaError]"]]


class FunctionTool:
    """A function the model may call. `definition` is what goes into a request's `tools`;
    calling the tool calls the function. Made by `@tool`."""

    __slots__ = ("__wrapped__", "_spec", "definition", "description", "is_async", "name", "parameters")

    def __init__(self, fn: Callable[..., Any], *, name: str | None = None, description: str | None = None):
        self.__wrapped__ = fn
        self.name = name or fn.__name__
        summary, arg_docs = _docstring(fn)
        self.description = description if description is not None else summary
        self.is_async = inspect.iscoroutinefunction(fn)
        self._spec = _arguments_spec(fn, self.name)
        # Described, then made strict again: a description next to a `$ref` gets it inlined.
        self.parameters = strict_schema(_describe(self._spec.schema, arg_docs))
        function: dict[str, Any] = {"name": self.name, "parameters": self.parameters, "strict": True}
        if self.description:
            function["description"] = self.description
        self.definition: dict[str, Any] = {"type": "function", "function": function}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.__wrapped__(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<FunctionTool {self.name}>"

    def arguments(self, text: str) -> dict[str, Any]:
        """The model's JSON arguments, decoded and validated (one of `DecodeFailure` if not)."""
        decoded = self._spec.decode(text or "{}")
        fields = getattr(decoded, "__struct_fields__", None)
        names = type(decoded).model_fields if fields is None else fields  # pydantic's, else msgspec's
        return {name: getattr(decoded, name) for name in names}

    async def run(self, arguments: dict[str, Any]) -> Any:
        """Call the function: awaited if async, else in a worker thread (it may block)."""
        if self.is_async:
            return await self.__wrapped__(**arguments)
        return await asyncio.to_thread(functools.partial(self.__wrapped__, **arguments))


@typing.overload
def tool(fn: Callable[..., Any], /) -> FunctionTool: ...
@typing.overload
def tool(
    *, name: str | None = None, description: str | None = None
) -> Callable[[Callable[..., Any]], FunctionTool]: ...
def tool(
    fn: Callable[..., Any] | None = None, /, *, name: str | None = None, description: str | None = None
) -> FunctionTool | Callable[[Callable[..., Any]], FunctionTool]:
    """Make a typed function (sync or async) a tool: named after it, described by its docstring's
    first paragraph, its parameters a strict schema from the signature (an `Args:` section's
    lines describe each one). `@tool` or `@tool(name=..., description=...)`."""
    if fn is None:
        return lambda f: FunctionTool(f, name=name, description=description)
    return FunctionTool(fn, name=name, description=description)


def _arguments_spec(fn: Callable[..., Any], name: str) -> OutputSpec:
    """The parameters as a Struct type (built once), compiled like any output type."""
    hints = typing.get_type_hints(fn, include_extras=True)
    fields: list[Any] = []
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"tool {name!r}: *args and **kwargs cannot be described to a model")
        hint = hints.get(param.name, Any)
        fields.append(
            (param.name, hint) if param.default is param.empty else (param.name, hint, param.default)
        )
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and any(mentions(f[1], pydantic.BaseModel) for f in fields):
        # A pydantic model among the parameters: the arguments are a pydantic model too.
        model = pydantic.create_model(
            f"{name}_arguments",
            __config__=pydantic.ConfigDict(extra="forbid"),
            **{f[0]: (f[1], f[2] if len(f) == 3 else ...) for f in fields},
        )
        return output_spec(model)
    arguments = msgspec.defstruct(f"{name}_arguments", fields, kw_only=True, forbid_unknown_fields=True)
    return output_spec(arguments)


def _docstring(fn: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    """The first paragraph, and each parameter's text from an `Args:` section (Google style)."""
    doc = inspect.getdoc(fn) or ""
    summary = doc.split("\n\n", 1)[0].strip().replace("\n", " ")
    described: dict[str, str] = {}
    section = re.search(r"^(?:Args|Arguments|Parameters):\s*$(.*?)(?:^\S|\Z)", doc, re.M | re.S)
    if section:
        current = None
        for line in section.group(1).splitlines():
            found = re.match(r"^\s{1,8}(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$", line)
            if found and (current is None or len(line) - len(line.lstrip()) <= 8):
                current = found.group(1)
                described[current] = found.group(2).strip()
            elif current and line.strip():
                described[current] = f"{described[current]} {line.strip()}".strip()
    return summary, described


def _describe(schema: dict[str, Any], described: Mapping[str, str]) -> dict[str, Any]:
    """The schema with each documented parameter's description."""
    for key, text in described.items():
        sub = schema.get("properties", {}).get(key)
        if isinstance(sub, dict) and text:
            sub["description"] = text
    schema.pop("title", None)
    return schema


# ---------------------------------------------------------------- the loop


def _tool_message(call_id: str, content: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def _as_text(value: Any) -> str:
    """What a tool returned, as the tool message's content: text as is, anything else as JSON."""
    if isinstance(value, str):
        return value
    try:
        return msgspec.json.encode(value, enc_hook=_encode_other).decode()
    except (TypeError, msgspec.EncodeError):
        return str(value)


def _encode_other(value: Any) -> Any:
    if hasattr(value, "model_dump"):  # a pydantic model
        return value.model_dump(mode="json")
    return str(value)


async def _run_call(call: ToolCall, tools: Mapping[str, FunctionTool], record: ToolRunCall) -> str:
    """Run one call; returns the text for the model (an error's text on failure, kept on `record`)."""
    found = tools.get(call.function.name)
    if found is None:
        record.error = LookupError(f"unknown tool {call.function.name!r}; tools: {', '.join(tools)}")
        return f"Error: {record.error}"
    try:
        record.arguments = found.arguments(call.function.arguments)
    except DecodeFailure as exc:
        record.error = exc
        return f"Error: invalid arguments for {found.name}: {exc}"
    started = time.perf_counter()
    try:
        record.result = await found.run(record.arguments)
    except Exception as exc:
        record.error = exc
        return f"Error: {type(exc).__name__}: {exc}"
    finally:
        record.duration = time.perf_counter() - started
    return _as_text(record.result)


async def _run_concurrently(calls: list[Coroutine[Any, Any, str]]) -> list[str]:
    """Run the calls as tasks and return their texts in order. Whatever ends the wait (our
    caller's cancel, or a tool raising CancelledError itself) cancels and awaits the tasks still
    running, so no tool outlives the loop. (A sync tool's thread cannot be stopped: it finishes
    on its own, its result dropped.)"""
    tasks = [asyncio.ensure_future(c) for c in calls]
    try:
        return await asyncio.gather(*tasks)
    finally:
        running = [t for t in tasks if not t.done()]
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running)


def _forced(choice: Any) -> bool:
    return isinstance(choice, dict) or choice == "required"


async def run_tools(
    create: Create,
    core: AtomaCore,
    request: ChatCompletionRequest | Mapping[str, Any],
    tools: Iterable[FunctionTool | Callable[..., Any]],
    options: RequestOptions | None,
    max_rounds: int,
    on_tool_error: str,
) -> Result[ToolRun, AtomaError]:
    try:
        made = [t if isinstance(t, FunctionTool) else tool(t) for t in tools]
    except (TypeError, NameError) as exc:  # *args, or annotations that cannot be resolved
        return Err(InvalidRequestError(f"cannot make a tool: {exc}"))
    by_name = {t.name: t for t in made}
    if len(by_name) < len(made):  # the model could only ever reach one of them
        names = [t.name for t in made]
        twice = sorted({n for n in names if names.count(n) > 1})
        return Err(InvalidRequestError(f"two tools share a name: {', '.join(twice)}"))
    if max_rounds < 1 or on_tool_error not in ("return", "raise"):
        return Err(InvalidRequestError("max_rounds must be >= 1 and on_tool_error 'return' or 'raise'"))
    body = as_dict(request)
    offered = [t.definition for t in by_name.values()]
    body["tools"] = [*msgspec.to_builtins(body.get("tools") or []), *offered]
    run = ToolRun(messages=msgspec.to_builtins(list(body.get("messages") or [])))
    while True:
        result = await create(core, {**body, "messages": run.messages}, options)
        if isinstance(result, Err):
            return result
        run.response = response = result.value
        run.rounds += 1
        run.usage = add_usage(run.usage, response.usage)
        if not response.choices:  # no answer and no calls: the server's fault, not the end of the run
            return Err(ResponseValidationError("the chat response has no choices"))
        message = response.choices[0].message
        run.messages.append(dict(message.to_param()))
        if not message.tool_calls:
            return Ok(run)
        if run.rounds >= max_rounds:
            return Err(ToolLoopError(f"the model still called tools after {max_rounds} rounds", run=run))
        records = [ToolRunCall(id=c.id, name=c.function.name, round=run.rounds) for c in message.tool_calls]
        run.calls.extend(records)
        texts = await _run_concurrently(
            [_run_call(c, by_name, r) for c, r in zip(message.tool_calls, records, strict=True)]
        )
        run.messages.extend(_tool_message(r.id, text) for r, text in zip(records, texts, strict=True))
        failed = next((r for r in records if r.error is not None), None)
        if failed is not None and on_tool_error == "raise":
            error = ToolExecutionError(f"tool {failed.name!r} failed: {failed.error}", run=run, call=failed)
            error.__cause__ = failed.error
            return Err(error)
        if _forced(body.get("tool_choice")):  # forced once: then the model may answer
            body["tool_choice"] = "auto"


async def chat_run_tools(
    core: AtomaCore,
    request: ChatCompletionRequest | ChatCompletionRequestParam,
    tools: Iterable[FunctionTool | Callable[..., Any]],
    *,
    options: RequestOptions | None = None,
    max_rounds: int = 10,
    on_tool_error: OnToolError = "return",
) -> Result[ToolRun, AtomaError]:
    """Chat with tools until the model answers without calling one. Each round: call the model,
    run its tool calls concurrently (`@tool` functions, or plain typed functions made tools),
    append its message and the results (in the model's order), call again. A tool that raises,
    bad arguments or an unknown name send the error's text back to the model (kept on the call),
    or end the run with `Err(ToolExecutionError)` if `on_tool_error="raise"`; still calling
    tools after `max_rounds` model calls: `Err(ToolLoopError)`. Both hold `.run`. A forced
    `tool_choice` applies to the first round only."""
    from ._chat import chat_create

    return await run_tools(chat_create, core, request, tools, options, max_rounds, on_tool_error)


async def confidential_chat_run_tools(
    core: AtomaCore,
    request: ChatCompletionRequest | ChatCompletionRequestParam,
    tools: Iterable[FunctionTool | Callable[..., Any]],
    *,
    options: RequestOptions | None = None,
    max_rounds: int = 10,
    on_tool_error: OnToolError = "return",
) -> Result[ToolRun, AtomaError]:
    """`chat_run_tools` over confidential chat: every round travels encrypted."""
    from ._confidential import confidential_chat_create

    return await run_tools(confidential_chat_create, core, request, tools, options, max_rounds, on_tool_error)
