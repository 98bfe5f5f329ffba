"""@tool and chat_run_tools against the sandbox: the tool definition, the loop (plain, forced,
parallel calls run concurrently, results in the model's order), tool failures sent back to the
model or raised, the round limit, cancellation, and the confidential variant."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Literal

import msgspec
import pytest

from atoma_core import AtomaCore, Err, errors
from atoma_core.models import ToolRun
from atoma_core.testing import Sandbox, faults
from atoma_funcs import FunctionTool, chat_run_tools, confidential_chat_run_tools, tool

from .conftest import CHAT
from .no_choices_server import core_of_a_server_without_choices


class Place(msgspec.Struct):
    city: str
    country: str | None = None


@tool
def get_weather(place: Place, unit: Literal["c", "f"] = "c") -> dict[str, object]:
    """Get the current weather for a place.

    Looks it up somewhere.

    Args:
        place: Where to look,
            city and country.
        unit (str): c or f.
    """
    return {"city": place.city, "temp": 21, "unit": unit}


@tool(name="clock", description="What time it is.")
async def get_time(zone: str) -> str:
    return f"12:00 in {zone}"


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def test_definition_from_signature_and_docstring() -> None:
    assert isinstance(get_weather, FunctionTool) and get_weather.name == "get_weather"
    function = get_weather.definition["function"]
    assert function["description"] == "Get the current weather for a place."
    assert function["strict"] is True
    parameters = function["parameters"]
    assert parameters["required"] == ["place", "unit"] and parameters["additionalProperties"] is False
    assert parameters["properties"]["place"]["description"] == "Where to look, city and country."
    assert parameters["properties"]["unit"]["description"] == "c or f."
    assert parameters["properties"]["unit"]["anyOf"][1] == {"type": "null"}
    assert get_time.definition["function"]["name"] == "clock"
    assert get_time.definition["function"]["description"] == "What time it is."
    assert get_weather(Place("Oslo")) == {"city": "Oslo", "temp": 21, "unit": "c"}  # still callable
    with pytest.raises(TypeError, match="args"):
        tool(lambda *args: None)


async def test_loop_runs_the_call_and_returns_the_answer(core: AtomaCore, sandbox: Sandbox) -> None:
    run = (await chat_run_tools(core, CHAT, [get_weather])).unwrap()
    assert isinstance(run, ToolRun) and run.rounds == 2
    assert run.response is not None
    assert run.response.choices[0].message.content == 'Tool said: {"city":"hello there","temp":21,"unit":"c"}'
    (call,) = run.calls
    assert call.name == "get_weather" and call.error is None and call.duration >= 0
    assert call.arguments == {"place": Place("hello there", "hello there"), "unit": "c"}
    assert call.result == {"city": "hello there", "temp": 21, "unit": "c"}
    assert [m["role"] for m in run.messages] == ["user", "assistant", "tool", "assistant"]
    json.dumps(run.messages)  # JSON-ready
    assert run.messages[2]["tool_call_id"] == call.id
    first, second = (r.json for r in sandbox.requests)
    assert first["tools"] == [get_weather.definition] and second["messages"] == run.messages[:3]
    last = run.response.usage
    assert run.usage is not None and last is not None
    assert (
        run.usage.prompt_tokens > last.prompt_tokens and run.usage.completion_tokens > last.completion_tokens
    )


async def test_parallel_calls_run_concurrently_and_answer_in_order(core: AtomaCore, sandbox: Sandbox) -> None:
    started: list[str] = []
    both = asyncio.Event()

    @tool
    async def slow(name: str) -> str:
        started.append(name)
        if len(started) == 2:
            both.set()
        await asyncio.wait_for(both.wait(), 5)  # only returns if the other one started meanwhile
        return name.upper()

    calls = [
        {"name": "slow", "arguments": {"name": "first"}, "id": "a"},
        {"name": "slow", "arguments": {"name": "second"}, "id": "b"},
    ]
    sandbox.script(faults.reply(tool_calls=calls))
    run = (await chat_run_tools(core, CHAT, [slow, add])).unwrap()
    assert sorted(started) == ["first", "second"]
    tool_messages = [m for m in run.messages if m["role"] == "tool"]
    assert tool_messages == [
        {"role": "tool", "tool_call_id": "a", "content": "FIRST"},
        {"role": "tool", "tool_call_id": "b", "content": "SECOND"},
    ]


async def test_sync_tools_run_in_a_thread(core: AtomaCore) -> None:
    threads: list[int] = []

    @tool
    def where(city: str) -> str:
        threads.append(threading.get_ident())
        return city

    (await chat_run_tools(core, CHAT, [where])).unwrap()
    assert threads and threads[0] != threading.get_ident()


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        ({"name": "add", "arguments": "{not json"}, "Error: invalid arguments for add: JSON is malformed"),
        (
            {"name": "add", "arguments": {"a": 1, "b": "x"}},
            "Error: invalid arguments for add: Expected `int`",
        ),
        (
            {"name": "add", "arguments": {"a": 1, "b": 2, "c": 3}},
            "Error: invalid arguments for add: Object contains unknown field `c`",
        ),
        ({"name": "nope", "arguments": {}}, "Error: unknown tool 'nope'; tools: add, boom"),
        ({"name": "boom", "arguments": {}}, "Error: RuntimeError: kaboom"),
    ],
)
async def test_tool_failures_go_back_to_the_model(
    core: AtomaCore, sandbox: Sandbox, call: dict[str, object], expected: str
) -> None:
    @tool
    def boom() -> None:
        raise RuntimeError("kaboom")

    sandbox.script(faults.reply(tool_calls=[call]))
    run = (await chat_run_tools(core, CHAT, [add, boom])).unwrap()
    (record,) = run.calls
    assert record.error is not None
    answer = run.messages[2]["content"]
    assert answer.startswith(expected), answer
    assert run.response is not None and run.response.choices[0].message.content == "Tool said: " + answer

    sandbox.script(faults.reply(tool_calls=[call]))
    result = await chat_run_tools(core, CHAT, [add, boom], on_tool_error="raise")
    assert isinstance(result, Err) and isinstance(result.error, errors.ToolExecutionError)
    assert result.error.call.error is result.error.__cause__
    assert result.error.run.messages[-1]["role"] == "tool"


async def test_max_rounds(core: AtomaCore, sandbox: Sandbox) -> None:
    sandbox.script(faults.reply(tool_calls=[{"name": "add", "arguments": {"a": 1, "b": 2}}], times=None))
    result = await chat_run_tools(core, CHAT, [add], max_rounds=3)
    assert isinstance(result, Err) and isinstance(result.error, errors.ToolLoopError)
    run = result.error.run
    assert run.rounds == 3 and len(run.calls) == 2 and len(sandbox.requests) == 3
    assert all(c.result == 3 for c in run.calls)


async def test_forced_tool_choice_applies_to_the_first_round(core: AtomaCore, sandbox: Sandbox) -> None:
    forced = {"type": "function", "function": {"name": "add"}}
    run = (await chat_run_tools(core, {**CHAT, "tool_choice": forced}, [get_weather, add])).unwrap()
    assert [c.name for c in run.calls] == ["add"] and run.rounds == 2
    assert [r.json.get("tool_choice") for r in sandbox.requests] == [forced, "auto"]


async def test_cancellation_cancels_running_tools(core: AtomaCore, sandbox: Sandbox) -> None:
    entered = asyncio.Event()
    cancelled = asyncio.Event()

    @tool
    async def forever(name: str) -> str:
        entered.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return name

    task = asyncio.ensure_future(chat_run_tools(core, CHAT, [forever]))
    await asyncio.wait_for(entered.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled.is_set()


async def test_a_tool_cancelling_itself_cancels_the_others(core: AtomaCore, sandbox: Sandbox) -> None:
    """A CancelledError out of one tool propagates, and the tools still running are cancelled
    and awaited, not left running after the loop returned."""
    outcome: list[str] = []

    @tool
    async def quitter(name: str) -> str:
        await asyncio.sleep(0.05)  # the other one is running by now
        raise asyncio.CancelledError

    @tool
    async def slow(name: str) -> str:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise
        return name

    calls = [{"name": "quitter", "arguments": {"name": "a"}}, {"name": "slow", "arguments": {"name": "b"}}]
    sandbox.script(faults.reply(tool_calls=calls))
    with pytest.raises(asyncio.CancelledError):
        await chat_run_tools(core, CHAT, [quitter, slow])
    assert outcome == ["cancelled"]  # already, when chat_run_tools returned


async def test_two_tools_with_one_name_are_refused(core: AtomaCore, sandbox: Sandbox) -> None:
    other = tool(name="add")(lambda a: a)  # type: ignore[arg-type,return-value]
    result = await chat_run_tools(core, CHAT, [add, other])
    assert isinstance(result, Err) and isinstance(result.error, errors.InvalidRequestError)
    assert "add" in result.error.message and sandbox.requests == []


async def test_a_response_without_choices_is_a_typed_error() -> None:
    async with core_of_a_server_without_choices() as empty:
        result = await chat_run_tools(empty, CHAT, [add])
    assert isinstance(result, Err) and isinstance(result.error, errors.ResponseValidationError)


async def test_errors_of_a_round_and_bad_arguments(core: AtomaCore, sandbox: Sandbox) -> None:
    sandbox.script(faults.status(401))
    assert isinstance((await chat_run_tools(core, CHAT, [add])).error, errors.AuthenticationError)  # type: ignore[union-attr]
    bad = await chat_run_tools(core, CHAT, [add], max_rounds=0)
    assert isinstance(bad, Err) and isinstance(bad.error, errors.InvalidRequestError)
    bad = await chat_run_tools(core, CHAT, [lambda **kw: None])
    assert isinstance(bad, Err) and isinstance(bad.error, errors.InvalidRequestError)


async def test_confidential_tool_loop(core: AtomaCore, sandbox: Sandbox) -> None:
    pytest.importorskip("cryptography")
    run = (await confidential_chat_run_tools(core, CHAT, [add])).unwrap()
    assert run.calls[0].result == 0 and run.rounds == 2
    assert sum(r.path == "/v1/confidential/chat/completions" for r in sandbox.requests) == 2


try:  # a pydantic model as a tool parameter (pydantic is in the dev extra)
    import pydantic

    class Order(pydantic.BaseModel):
        item: str
        quantity: int = 1

    @tool
    def place(order: Order, rush: bool = False) -> str:
        """Place an order.

        Args:
            order: What to order.
        """
        return f"{order.quantity} x {order.item}{' (rush)' if rush else ''}"

except ImportError:  # pragma: no cover
    pydantic = None  # type: ignore[assignment]


@pytest.mark.skipif(pydantic is None, reason="needs pydantic")
async def test_a_pydantic_parameter_makes_pydantic_arguments(core: AtomaCore, sandbox: Sandbox) -> None:
    parameters = place.definition["function"]["parameters"]
    assert parameters["additionalProperties"] is False and parameters["required"] == ["order", "rush"]
    order = parameters["properties"]["order"]
    assert order["description"] == "What to order." and "$ref" not in order  # inlined, as strict mode wants
    assert order["required"] == ["item", "quantity"] and "$defs" not in parameters
    call = {"name": "place", "arguments": {"order": {"item": "tea", "quantity": 2}, "rush": None}}
    sandbox.script(faults.reply(tool_calls=[call]))
    run = (await chat_run_tools(core, CHAT, [place])).unwrap()
    assert run.calls[0].result == "2 x tea"
    assert run.calls[0].arguments == {"order": Order(item="tea", quantity=2), "rush": False}
