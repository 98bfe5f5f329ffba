"""The sandbox's structured answers over loopback HTTP: a `json_schema` response_format gets an
instance of the schema, `json_object` a JSON object, tools get tool calls whose arguments fit
each tool's `parameters` (plain and streamed as deltas), a tool result gets a text answer, and
`faults.reply` scripts any assistant message."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from atoma_core import AtomaCore
from atoma_core.testing import Sandbox, faults
from atoma_core.testing._instances import instance_of, schema_in_text
from atoma_funcs import chat_create, chat_create_stream

from .conftest import CHAT


class Address(msgspec.Struct):
    city: str
    zip_code: str | None = None


class Person(msgspec.Struct):
    name: str
    age: int
    tags: list[str]
    kind: str = "user"
    address: Address | None = None


PERSON_SCHEMA = msgspec.json.schema(Person)
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
CLOCK = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}


def json_schema_format(schema: Any) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "Person", "schema": schema, "strict": True}}


async def test_json_schema_answer_is_an_instance(core: AtomaCore) -> None:
    request = {**CHAT, "response_format": json_schema_format(PERSON_SCHEMA)}
    response = (await chat_create(core, request)).unwrap()
    person = msgspec.json.decode(response.choices[0].message.content or "", type=Person)
    assert person.name == "hello there" and person.address == Address("hello there", "hello there")
    assert response.choices[0].finish_reason == "stop"


async def test_json_schema_answer_streams_in_small_tokens(core: AtomaCore) -> None:
    request = {**CHAT, "response_format": json_schema_format(PERSON_SCHEMA)}
    async with (await chat_create_stream(core, request)).unwrap() as stream:
        pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    assert max(len(p) for p in pieces) == 4 and len(pieces) > 10
    msgspec.json.decode("".join(pieces), type=Person)
    assert stream.usage is not None and stream.usage.completion_tokens == len([p for p in pieces if p])


async def test_json_schema_answer_cut_by_max_tokens_says_length(core: AtomaCore) -> None:
    request = {**CHAT, "response_format": json_schema_format(PERSON_SCHEMA), "max_tokens": 3}
    choice = (await chat_create(core, request)).unwrap().choices[0]
    assert choice.finish_reason == "length" and len(choice.message.content or "") == 12


async def test_json_object_answer_fits_a_schema_in_the_system_message(core: AtomaCore) -> None:
    system = {"role": "system", "content": "Reply with JSON for this schema:\n" + json.dumps(PERSON_SCHEMA)}
    request = {**CHAT, "messages": [system, *CHAT["messages"]], "response_format": {"type": "json_object"}}
    content = (await chat_create(core, request)).unwrap().choices[0].message.content
    msgspec.json.decode(content or "", type=Person)
    plain = {**CHAT, "response_format": {"type": "json_object"}}
    content = (await chat_create(core, plain)).unwrap().choices[0].message.content
    assert json.loads(content or "") == {"answer": "You said: hello there"}


async def test_tool_call_arguments_fit_the_parameters(core: AtomaCore) -> None:
    request = {**CHAT, "tools": [WEATHER, CLOCK], "tool_choice": "required"}
    choice = (await chat_create(core, request)).unwrap().choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "hello there", "unit": "c"}


async def test_forced_tool_choice_and_parallel_calls(core: AtomaCore) -> None:
    forced = {"type": "function", "function": {"name": "get_time"}}
    request = {**CHAT, "tools": [WEATHER, CLOCK], "tool_choice": forced}
    calls = (await chat_create(core, request)).unwrap().choices[0].message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_time"]
    request = {**CHAT, "tools": [WEATHER, CLOCK], "parallel_tool_calls": True}
    calls = (await chat_create(core, request)).unwrap().choices[0].message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    assert len({c.id for c in calls}) == 2
    request = {**CHAT, "tools": [WEATHER], "tool_choice": "none"}
    assert (await chat_create(core, request)).unwrap().choices[0].message.tool_calls == []


async def test_tool_calls_stream_as_deltas(core: AtomaCore) -> None:
    request = {**CHAT, "tools": [WEATHER, CLOCK], "parallel_tool_calls": True}
    whole = (await chat_create(core, request)).unwrap()
    async with (await chat_create_stream(core, request)).unwrap() as stream:
        pieces = sum([len(c.choices[0].delta.tool_calls or []) async for c in stream if c.choices])
        collected = (await stream.collect()).unwrap()
    assert pieces > 4  # a head per call, then arguments in 8-character pieces

    def shape(calls: Any) -> list[tuple[str, str]]:
        return [(c.function.name, c.function.arguments) for c in calls or ()]

    assert shape(collected.choices[0].message.tool_calls) == shape(whole.choices[0].message.tool_calls)
    assert collected.choices[0].finish_reason == "tool_calls"
    assert stream.usage is not None and stream.usage.total_tokens > 0


async def test_tool_result_gets_a_final_text_answer(core: AtomaCore) -> None:
    first = (await chat_create(core, {**CHAT, "tools": [WEATHER]})).unwrap().choices[0].message
    (call,) = first.tool_calls or []
    tool_message = {"role": "tool", "tool_call_id": call.id, "content": "21 C"}
    messages = [*CHAT["messages"], first.to_param(), tool_message]
    answer = (await chat_create(core, {**CHAT, "messages": messages, "tools": [WEATHER]})).unwrap()
    assert answer.choices[0].message.content == "Tool said: 21 C"
    assert answer.choices[0].finish_reason == "stop"


async def test_scripted_reply(core: AtomaCore, sandbox: Sandbox) -> None:
    sandbox.script(
        faults.reply('{"name": 1}'),
        faults.reply(refusal="I can't help with that"),
        faults.reply(tool_calls=[{"name": "get_weather", "arguments": "{not json"}]),
        faults.reply('{"name": "a", "age"', finish_reason="content_filter"),
    )
    bad = (await chat_create(core, CHAT)).unwrap().choices[0]
    assert bad.message.content == '{"name": 1}' and bad.finish_reason == "stop"
    refused = (await chat_create(core, CHAT)).unwrap().choices[0].message
    assert refused.refusal == "I can't help with that" and refused.content is None
    called = (await chat_create(core, CHAT)).unwrap().choices[0]
    assert called.finish_reason == "tool_calls"
    assert called.message.tool_calls and called.message.tool_calls[0].function.arguments == "{not json"
    async with (await chat_create_stream(core, CHAT)).unwrap() as stream:
        filtered = (await stream.collect()).unwrap().choices[0]
    assert filtered.finish_reason == "content_filter" and filtered.message.content == '{"name": "a", "age"'


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "array", "items": {"type": "integer", "minimum": 3}, "minItems": 2},
        {"anyOf": [{"type": "null"}, {"type": "number", "exclusiveMinimum": 1.5}]},
        {"type": ["string", "null"], "minLength": 12, "maxLength": 12},
        {"type": "string", "format": "date-time"},
        {
            "allOf": [{"$ref": "#/$defs/A"}],
            "$defs": {"A": {"type": "object", "properties": {"a": {"const": 7}}}},
        },
        {"type": "array", "prefixItems": [{"type": "boolean"}, {"type": "string"}], "items": False},
    ],
)
def test_instances_fit_their_schema(schema: dict[str, Any]) -> None:
    value = instance_of(schema, "hello")
    expected = {
        0: [3, 3],
        1: 2.5,
        2: "helloxxxxxxx",
        3: "2026-01-02T03:04:05Z",
        4: {"a": 7},
        5: [True, "hello"],
    }
    assert value in expected.values()


def test_schema_in_text() -> None:
    assert schema_in_text('Use {"type": "object"} please') == {"type": "object"}
    assert schema_in_text("no schema here") is None
    assert schema_in_text('{"a": 1}') is None
    assert schema_in_text("{broken") is None
