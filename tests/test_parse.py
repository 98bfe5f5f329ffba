"""chat_parse against the sandbox: the three modes, the types it takes, the strict schema it
sends, the typed failures (length, content filter, validation) and validation retries."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from typing import Annotated, Any, Literal, TypedDict, Union

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atoma_core import AtomaCore, Err, errors
from atoma_core.config import CallInfo, Hooks
from atoma_core.models import ChatCompletionRequest, ChatCompletionResponse, ParsedChatCompletion
from atoma_core.models.usage import CompletionTokensDetails, PromptTokensDetails, Usage
from atoma_core.testing import Sandbox, faults
from atoma_core.testing._instances import instance_of
from atoma_funcs import chat_parse, confidential_chat_parse
from atoma_funcs._parse import add_usage, parse_response, retry_messages
from atoma_funcs._schema import output_spec, strict_schema

from .conftest import CHAT, TOKEN
from .no_choices_server import core_of_a_server_without_choices


class Address(msgspec.Struct):
    city: str
    zip_code: str | None = None


class Person(msgspec.Struct):
    name: str
    age: int
    mood: Literal["happy", "sad"] = "happy"
    address: Address | None = None


@dataclasses.dataclass
class Ticket:
    title: str
    priority: int


class Cat(msgspec.Struct, tag=True):
    name: str


class Dog(msgspec.Struct, tag=True):
    barks: bool


class Movie(TypedDict):
    title: str
    year: int


async def test_json_schema_mode_sends_a_strict_schema_and_decodes(core: AtomaCore, sandbox: Sandbox) -> None:
    response = (await chat_parse(core, CHAT, Person)).unwrap()
    assert isinstance(response, ParsedChatCompletion)
    person = response.choices[0].message.parsed
    assert person == Person("hello there", 0, "happy", Address("hello there", "hello there"))
    sent = sandbox.requests[-1].json["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["name"] == "Person"
    assert sent["json_schema"]["strict"] is True
    schema = sent["json_schema"]["schema"]
    assert "$ref" not in schema and schema["additionalProperties"] is False  # the root $ref inlined
    assert schema["required"] == ["name", "age", "mood", "address"]
    assert schema["properties"]["mood"] == {"anyOf": [{"enum": ["happy", "sad"]}, {"type": "null"}]}
    address = schema["$defs"]["Address"]
    assert address["required"] == ["city", "zip_code"] and "default" not in json.dumps(schema)
    assert response.choices[0].message.content and response.meta is not None


@pytest.mark.parametrize("mode", ["json_schema", "json_object", "tool"])
@pytest.mark.parametrize(
    ("type_", "expected"),
    [
        (Person, Person("hello there", 0, "happy", Address("hello there", "hello there"))),
        (Ticket, Ticket("hello there", 0)),
        (Movie, {"title": "hello there", "year": 0}),
        (list[Ticket], [Ticket("hello there", 0)]),
        (Literal["spam", "ham"], "ham"),  # msgspec sorts the enum
        (Union[Cat, Dog], Cat("hello there")),
    ],
)
async def test_modes_and_types(
    core: AtomaCore, sandbox: Sandbox, mode: str, type_: Any, expected: Any
) -> None:
    response = (await chat_parse(core, CHAT, type_, mode=mode)).unwrap()  # type: ignore[arg-type]
    assert response.choices[0].message.parsed == expected
    sent = sandbox.requests[-1].json
    if mode == "json_object":
        # the schema rides along too: llama-cpp-python constrains json_object to it with a grammar
        assert sent["response_format"] == {"type": "json_object", "schema": output_spec(type_).schema}
        assert sent["messages"][0]["role"] == "system" and "JSON Schema" in sent["messages"][0]["content"]
    if mode == "tool":
        (function,) = [t["function"] for t in sent["tools"]]
        assert sent["tool_choice"] == {"type": "function", "function": {"name": function["name"]}}
        assert function["parameters"]["type"] == "object" and function["strict"] is True


async def test_pydantic_models(core: AtomaCore, sandbox: Sandbox) -> None:
    pydantic = pytest.importorskip("pydantic")

    class Pet(pydantic.BaseModel):  # type: ignore[misc,name-defined]
        name: str
        legs: int = 4
        tags: list[str] = []  # noqa: RUF012 (pydantic copies defaults)

    parsed = (await chat_parse(core, CHAT, Pet)).unwrap().choices[0].message.parsed
    assert parsed == Pet(name="hello there", legs=0, tags=["hello there"])
    schema = sandbox.requests[-1].json["response_format"]["json_schema"]["schema"]
    assert schema["required"] == ["name", "legs", "tags"] and "default" not in json.dumps(schema)
    sandbox.script(faults.reply('{"name": "Rex", "legs": null, "tags": null}'))
    parsed = (await chat_parse(core, CHAT, Pet)).unwrap().choices[0].message.parsed
    assert parsed == Pet(name="Rex")  # nulls for optional fields: their defaults
    plain = (await chat_parse(core, CHAT, Pet)).unwrap().to_dict()
    assert plain["choices"][0]["message"]["parsed"] == {"name": "hello there", "legs": 0, "tags": ["hello there"]}
    sandbox.script(faults.reply('{"name": "Rex", "legs": "many", "tags": []}'))
    error = (await chat_parse(core, CHAT, list[Pet], mode="json_object")).error  # type: ignore[union-attr]
    assert isinstance(error, errors.OutputValidationError) and "list" in error.message


async def test_nulls_for_optional_fields_get_the_defaults(core: AtomaCore, sandbox: Sandbox) -> None:
    sandbox.script(
        faults.reply('{"name": "Ann", "age": 3, "mood": null, "address": {"city": "X", "zip_code": null}}')
    )
    parsed = (await chat_parse(core, CHAT, Person)).unwrap().choices[0].message.parsed
    assert parsed == Person("Ann", 3, "happy", Address("X"))


async def test_validation_error_keeps_the_decoders_message_and_the_content(
    core: AtomaCore, sandbox: Sandbox
) -> None:
    sandbox.script(faults.reply('{"name": "Ann", "age": "three", "mood": "happy", "address": null}'))
    result = await chat_parse(core, CHAT, Person)
    assert isinstance(result, Err)
    error = result.error
    assert isinstance(error, errors.OutputValidationError) and isinstance(error, errors.StructuredOutputError)
    assert error.message == "Expected `int`, got `str` - at `$.age`"
    assert error.raw == '{"name": "Ann", "age": "three", "mood": "happy", "address": null}'
    assert error.response.choices[0].message.parsed is None and error.usage.total_tokens > 0
    sandbox.script(faults.reply("Sure! Here is the JSON: {"))
    error = (await chat_parse(core, CHAT, Person)).error  # type: ignore[union-attr]
    assert isinstance(error, errors.OutputValidationError) and "malformed" in error.message


async def test_retries_send_the_complaint_back_and_count_usage(core: AtomaCore, sandbox: Sandbox) -> None:
    sandbox.script(faults.reply('{"title": "A"}'), faults.reply('{"title": 1, "priority": 1}'))
    result = await chat_parse(core, CHAT, Ticket, max_validation_retries=2)
    response = result.unwrap()
    parsed = response.choices[0].message.parsed
    assert parsed is not None and parsed.title.startswith(
        "Your answer does not match"
    )  # it read the complaint
    assert len(sandbox.requests) == 3
    last = sandbox.requests[-1].json["messages"]
    assert [m["role"] for m in last] == ["user", "assistant", "user", "assistant", "user"]
    assert last[1]["content"] == '{"title": "A"}'
    assert "Object missing required field `priority`" in last[2]["content"]
    assert last[3]["content"] == '{"title": 1, "priority": 1}'
    assert "Expected `str`, got `int` - at `$.title`" in last[4]["content"]
    assert response.usage is not None
    single = (await chat_parse(core, CHAT, Ticket)).unwrap().usage
    assert single is not None and response.usage.completion_tokens > 2 * single.completion_tokens - 10
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens


async def test_retries_usage_is_the_sum_of_every_attempts(sandbox: Sandbox) -> None:
    """Each attempt's usage as the server reported it (seen by a hook), summed exactly."""
    seen: list[tuple[int, int, int]] = []

    def on_call_end(info: CallInfo) -> None:
        usage = info.value.usage
        seen.append((usage.prompt_tokens, usage.completion_tokens, usage.total_tokens))

    sandbox.script(faults.reply('{"title": "A"}'), faults.reply('{"title": 1, "priority": 1}'))
    async with AtomaCore(TOKEN, sandbox.url, hooks=Hooks(on_call_end=on_call_end)) as hooked:
        usage = (await chat_parse(hooked, CHAT, Ticket, max_validation_retries=2)).unwrap().usage
    assert len(seen) == 3 and len(set(seen)) == 3  # three attempts, three different counts
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == tuple(map(sum, zip(*seen)))


async def test_retries_run_out(core: AtomaCore, sandbox: Sandbox) -> None:
    sandbox.script(faults.reply('{"title": 1}', times=2))
    error = (await chat_parse(core, CHAT, Ticket, max_validation_retries=1)).error  # type: ignore[union-attr]
    assert isinstance(error, errors.OutputValidationError) and len(sandbox.requests) == 2


async def test_tool_mode_retry_answers_the_call(core: AtomaCore, sandbox: Sandbox) -> None:
    sandbox.script(faults.reply(tool_calls=[{"name": "Ticket", "arguments": '{"title": "x"}', "id": "c1"}]))
    parsed = (await chat_parse(core, CHAT, Ticket, mode="tool", max_validation_retries=1)).unwrap()
    assert parsed.choices[0].message.parsed == Ticket(parsed.choices[0].message.parsed.title, 0)  # type: ignore[union-attr]
    messages = sandbox.requests[-1].json["messages"]
    assert messages[1]["tool_calls"][0]["id"] == "c1" and messages[2]["role"] == "tool"
    assert messages[2]["tool_call_id"] == "c1" and "priority" in messages[2]["content"]


async def test_tool_mode_without_a_call_is_a_validation_error(core: AtomaCore, sandbox: Sandbox) -> None:
    sandbox.script(faults.reply("I would rather talk"))
    error = (await chat_parse(core, CHAT, Ticket, mode="tool")).error  # type: ignore[union-attr]
    assert isinstance(error, errors.OutputValidationError) and error.raw == "I would rather talk"


async def test_length_and_content_filter_are_typed(core: AtomaCore, sandbox: Sandbox) -> None:
    error = (await chat_parse(core, {**CHAT, "max_tokens": 4}, Person, max_validation_retries=3)).error  # type: ignore[union-attr]
    assert isinstance(error, errors.LengthFinishReasonError) and error.content == '{"name": "hello '
    assert len(sandbox.requests) == 1  # not retried: asking again would be cut off again
    sandbox.script(faults.reply('{"name": "', finish_reason="content_filter"))
    error = (await chat_parse(core, CHAT, Person)).error  # type: ignore[union-attr]
    assert isinstance(error, errors.ContentFilterFinishReasonError) and error.content == '{"name": "'


async def test_refusal_leaves_parsed_none(core: AtomaCore, sandbox: Sandbox) -> None:
    sandbox.script(faults.reply(refusal="I can't help with that."))
    message = (await chat_parse(core, CHAT, Person)).unwrap().choices[0].message
    assert message.parsed is None and message.refusal == "I can't help with that."


async def test_bad_arguments_are_invalid_requests(core: AtomaCore, sandbox: Sandbox) -> None:
    error = (await chat_parse(core, CHAT, Person, mode="yaml")).error  # type: ignore[arg-type,union-attr]
    assert isinstance(error, errors.InvalidRequestError) and "mode" in error.message
    error = (await chat_parse(core, CHAT, object)).error  # type: ignore[union-attr]
    assert isinstance(error, errors.InvalidRequestError) and "JSON Schema" in error.message
    error = (await chat_parse(core, CHAT, Person, max_validation_retries=-1)).error  # type: ignore[union-attr]
    assert isinstance(error, errors.InvalidRequestError)
    assert sandbox.requests == []


async def test_request_struct_and_server_errors(core: AtomaCore, sandbox: Sandbox) -> None:
    request = msgspec.convert(CHAT, ChatCompletionRequest)
    assert (await chat_parse(core, request, Ticket)).unwrap().choices[0].message.parsed == Ticket(
        "hello there", 0
    )
    sandbox.script(faults.status(400))
    assert isinstance((await chat_parse(core, request, Ticket)).error, errors.BadRequestError)  # type: ignore[union-attr]


async def test_confidential_parse(core: AtomaCore, sandbox: Sandbox) -> None:
    pytest.importorskip("cryptography")
    parsed = (await confidential_chat_parse(core, CHAT, Ticket)).unwrap()
    assert parsed.choices[0].message.parsed == Ticket("hello there", 0)
    sealed = [r for r in sandbox.requests if r.path == "/v1/confidential/chat/completions"]
    assert len(sealed) == 1 and b"Ticket" not in sealed[0].raw  # the schema travelled encrypted


async def test_a_response_without_choices_is_a_typed_error() -> None:
    async with core_of_a_server_without_choices() as empty:
        result = await chat_parse(empty, CHAT, Ticket, max_validation_retries=2)
    assert isinstance(result, Err) and isinstance(result.error, errors.ResponseValidationError)


def test_compiled_specs_are_cached() -> None:
    assert output_spec(Person) is output_spec(Person)
    assert output_spec(list[Person]).wrapped and not output_spec(Person).wrapped


def test_strict_schema_rules() -> None:
    schema = {
        "$ref": "#/$defs/A",
        "$defs": {
            "A": {
                "type": "object",
                "properties": {
                    "x": {"type": "integer", "default": 1},
                    "y": {"$ref": "#/$defs/B", "description": "d"},
                },
                "required": [],
            },
            "B": {"type": "object", "properties": {"z": {"type": ["string", "null"]}}, "required": ["z"]},
        },
    }
    strict = strict_schema(schema)
    assert strict["required"] == ["x", "y"] and strict["additionalProperties"] is False
    assert strict["properties"]["x"] == {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    inlined = strict["properties"]["y"]["anyOf"][0]
    assert inlined["description"] == "d" and inlined["properties"] == {"z": {"type": ["string", "null"]}}
    assert schema["$defs"]["A"]["required"] == []  # the input is left alone


class Branch(msgspec.Struct):
    name: str
    kids: list[Annotated[Branch, msgspec.Meta(description="a sub-branch")]]


async def test_a_recursive_type_keeps_its_recursion(core: AtomaCore, sandbox: Sandbox) -> None:
    """A described `$ref` to a type that contains itself stays a `$ref` (inlining it once would
    leave the grandchildren untyped)."""
    parsed = (await chat_parse(core, CHAT, Branch)).unwrap().choices[0].message.parsed
    assert isinstance(parsed, Branch) and isinstance(parsed.kids[0], Branch)
    schema = sandbox.requests[-1].json["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["kids"]["items"] == {"$ref": "#/$defs/Branch"}
    assert schema["$defs"]["Branch"]["properties"]["kids"]["items"] == {"$ref": "#/$defs/Branch"}
    assert schema["$defs"]["Branch"]["additionalProperties"] is False


def test_a_retry_sends_back_the_choice_that_did_not_fit() -> None:
    """With n > 1, the assistant turn sent back is the misfit the complaint is about, not choice 0."""
    good = '{"title": "A", "priority": 1}'
    bad = '{"title": "B"}'
    answer = {"role": "assistant"}
    response = msgspec.convert(
        {
            "id": "c",
            "created": 0,
            "model": "m",
            "choices": [
                {"index": i, "finish_reason": "stop", "message": {**answer, "content": text}}
                for i, text in enumerate([good, bad])
            ],
        },
        ChatCompletionResponse,
    )
    spec = output_spec(Ticket)
    error = parse_response(response, spec, "json_schema", None).error  # type: ignore[union-attr]
    assert isinstance(error, errors.OutputValidationError) and error.raw == bad
    sent, complaint = retry_messages(response, error, spec, "json_schema")
    assert sent == {"role": "assistant", "content": bad} and "priority" in complaint["content"]


def test_usage_of_attempts_adds_up_with_its_breakdowns() -> None:
    first = Usage(
        prompt_tokens=10,
        completion_tokens=5,
        total_tokens=15,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=4),
        completion_tokens_details=CompletionTokensDetails(reasoning_tokens=2),
    )
    second = Usage(prompt_tokens=7, completion_tokens=3, total_tokens=10)
    second.prompt_tokens_details = PromptTokensDetails(cached_tokens=1, audio_tokens=2)
    total = add_usage(first, second)
    assert total is not None and (total.prompt_tokens, total.completion_tokens, total.total_tokens) == (17, 8, 25)
    assert total.prompt_tokens_details == PromptTokensDetails(cached_tokens=5, audio_tokens=2)
    assert total.completion_tokens_details == CompletionTokensDetails(reasoning_tokens=2)
    assert add_usage(None, second) is second and add_usage(None, None) is None


def test_parse_imports_no_pydantic() -> None:
    code = "import sys, msgspec; from atoma_funcs._schema import output_spec\n" + (
        "class P(msgspec.Struct):\n    a: int\noutput_spec(P)\nassert 'pydantic' not in sys.modules, 'pydantic'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


FIELD_TYPES: list[Any] = [int, str, float, bool, list[str], int | None, Literal["a", "b"], Address, dict[str, int]]


@settings(max_examples=60, deadline=None)
@given(
    picks=st.lists(st.tuples(st.sampled_from(range(len(FIELD_TYPES))), st.booleans()), min_size=1, max_size=6),
    nulls=st.booleans(),
)
def test_strict_schema_and_decoder_agree(picks: list[tuple[int, bool]], nulls: bool) -> None:
    """For any Struct, an instance of the strict schema (as a guided server makes one) decodes;
    so does one with null for every optional field (the model's "not given")."""
    fields: list[Any] = []
    defaults = {int: 1, str: "s", float: 1.5, bool: True, int | None: None}
    for i, (pick, optional) in enumerate(picks):
        kind = FIELD_TYPES[pick]
        fields.append((f"f{i}", kind, defaults[kind]) if optional and kind in defaults else (f"f{i}", kind))
    type_ = msgspec.defstruct("Random", fields, kw_only=True)
    spec = output_spec(type_)
    assert all(p.get("additionalProperties") is False for p in _objects(spec.schema))
    value = instance_of(spec.schema, "text")
    if nulls:
        optional_names = [f[0] for f in fields if len(f) == 3]
        value = {k: (None if k in optional_names else v) for k, v in value.items()}
    decoded = spec.decode(json.dumps(value))
    assert isinstance(decoded, type_)


def _objects(schema: Any) -> list[dict[str, Any]]:
    """Every object schema with properties in `schema`."""
    found = []
    if isinstance(schema, dict):
        if "properties" in schema:
            found.append(schema)
        for sub in schema.values():
            found.extend(_objects(sub))
    elif isinstance(schema, list):
        for sub in schema:
            found.extend(_objects(sub))
    return found
