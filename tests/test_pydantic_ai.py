"""`AtomaModel` as pydantic-ai's own model tests check a model (pydantic-ai's
tests/models/test_openai.py, mirrored with the sandbox where they use a mocked OpenAI client):

- test_request_simple_success -> test_a_plain_run: the response's parts, model, provider, id,
  finish reason and usage;
- test_request_tool_call -> test_tool_call_retries: a tool raising ModelRetry, the retry sent
  back as the tool's result, usage (cache reads included) summed over the requests;
- test_stream_text / test_stream_structured -> test_streamed_text and test_streamed_structured;
- the message-mapping tests (system prompt, instructions, image URL and binary image inputs,
  tool returns, retries) -> test_every_part_kind_is_mapped, on the wire;
- the native / prompted output tests -> test_output_modes.

Plus what this SDK adds: confidential compute, its typed errors, and streams released on exit.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("pydantic_ai", reason="the dev extra installs pydantic-ai-slim")

from pydantic import BaseModel
from pydantic_ai import Agent, ModelRetry, NativeOutput, PromptedOutput
from pydantic_ai._warnings import PydanticAIDeprecationWarning
from pydantic_ai.messages import (
    BinaryContent,
    ImageUrl,
    ModelRequest,
    ModelResponse,
    RetryPromptPart,
    SystemPromptPart,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models import ModelRequestParameters

from atoma_core import AtomaCore
from atoma_core.errors import BadRequestError, RequestTimeoutError
from atoma_core.testing import Sandbox, faults
from atoma_funcs.integrations.pydantic_ai import AtomaModel

from .conftest import acquired_connections


class City(BaseModel):
    name: str
    population: int


def chat_requests(sandbox: Sandbox) -> list[dict[str, Any]]:
    return [r.json for r in sandbox.requests if r.path.endswith("/chat/completions")]


async def test_a_plain_run(core: AtomaCore) -> None:
    result = await Agent(AtomaModel("sandbox-model", core)).run("hello there")
    assert result.output == "You said: hello there"
    response = result.all_messages()[-1]
    assert isinstance(response, ModelResponse)
    assert response.parts == [TextPart(content="You said: hello there")]
    assert (response.model_name, response.provider_name, response.finish_reason) == ("sandbox-model", "atoma", "stop")
    assert response.provider_response_id and response.provider_response_id.startswith("chatcmpl-")
    assert response.provider_details is not None and len(response.provider_details["response_hash"]) == 64
    assert (result.usage.requests, result.usage.input_tokens, result.usage.output_tokens) == (1, 5, 4)


async def test_tool_call_retries(core: AtomaCore, sandbox: Sandbox) -> None:
    sandbox.script(
        faults.reply(tool_calls=[{"id": "1", "name": "get_location", "arguments": {"loc_name": "San Fransisco"}}]),
        faults.reply(tool_calls=[{"id": "2", "name": "get_location", "arguments": {"loc_name": "London"}}]),
        faults.reply("final response"),
    )
    agent = Agent(AtomaModel("sandbox-model", core), instructions="this is the system prompt")

    @agent.tool_plain
    async def get_location(loc_name: str) -> str:
        if loc_name == "London":
            return json.dumps({"lat": 51, "lng": 0})
        raise ModelRetry("Wrong location, please try again")

    result = await agent.run("Hello")
    assert result.output == "final response"
    second, third = chat_requests(sandbox)[1:]
    assert second["messages"][0] == {"role": "system", "content": "this is the system prompt"}
    retry = second["messages"][-1]
    assert retry["role"] == "tool" and retry["tool_call_id"] == "1" and "Wrong location" in retry["content"]
    assert third["messages"][-1] == {"role": "tool", "content": '{"lat": 51, "lng": 0}', "tool_call_id": "2"}
    assert second["tools"][0]["function"]["name"] == "get_location"
    assert (result.usage.requests, result.usage.tool_calls) == (3, 1)
    responses = [m for m in result.all_messages() if isinstance(m, ModelResponse)]
    assert all(r.usage.input_tokens > 0 and r.usage.output_tokens > 0 for r in responses)
    assert result.usage.input_tokens == sum(r.usage.input_tokens for r in responses)
    assert result.usage.output_tokens == sum(r.usage.output_tokens for r in responses)


async def test_invalid_tool_arguments_are_sent_back_for_a_retry(core: AtomaCore, sandbox: Sandbox) -> None:
    sandbox.script(
        faults.reply(tool_calls=[{"id": "a", "name": "double", "arguments": '{"x": "not a number"}'}]),
        faults.reply(tool_calls=[{"id": "b", "name": "double", "arguments": {"x": 21}}]),
        faults.reply("42"),
    )
    agent = Agent(AtomaModel("sandbox-model", core))
    seen: list[int] = []

    @agent.tool_plain
    def double(x: int) -> int:
        seen.append(x)
        return 2 * x

    assert (await agent.run("double 21")).output == "42"
    assert seen == [21]
    retry = chat_requests(sandbox)[1]["messages"][-1]
    assert retry["role"] == "tool" and retry["tool_call_id"] == "a" and "x" in retry["content"]


async def test_every_part_kind_is_mapped(core: AtomaCore, sandbox: Sandbox) -> None:
    model = AtomaModel("sandbox-model", core)
    with pytest.warns(PydanticAIDeprecationWarning):  # deprecated in 2.x, still mapped until v3
        retry = RetryPromptPart("try again", tool_name="lookup", tool_call_id="t2")
    history = [
        ModelRequest(parts=[
            SystemPromptPart("be brief"),
            UserPromptPart(["look:", ImageUrl("https://example.com/a.png"), BinaryContent(b"\x89PNG", media_type="image/png")]),
        ]),
        ModelResponse(parts=[ThinkingPart("hmm"), TextPart("Let me check."), ToolCallPart("lookup", {"q": "a"}, tool_call_id="t1")]),
        ModelRequest(parts=[ToolReturnPart("lookup", {"found": True}, tool_call_id="t1")]),
        ModelResponse(parts=[ToolCallPart("lookup", '{"q": "b"}', tool_call_id="t2")]),
        # The latest request's instructions are the ones sent.
        ModelRequest(parts=[retry], instructions="answer in English"),
    ]
    response = await model.request(history, None, ModelRequestParameters())
    assert isinstance(response.parts[0], TextPart) and response.parts[0].content.startswith("Tool said: try again")
    sent = chat_requests(sandbox)[-1]["messages"]
    assert sent[:2] == [{"role": "system", "content": "be brief"}, {"role": "system", "content": "answer in English"}]
    assert sent[2] == {"role": "user", "content": [
        {"type": "text", "text": "look:"},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw=="}},
    ]}
    assert sent[3] == {"role": "assistant", "content": "Let me check.", "tool_calls": [
        {"id": "t1", "type": "function", "function": {"name": "lookup", "arguments": '{"q":"a"}'}}]}
    assert sent[4] == {"role": "tool", "content": '{"found":true}', "tool_call_id": "t1"}
    assert sent[5]["tool_calls"][0]["id"] == "t2" and sent[5]["content"] == ""
    assert sent[6]["role"] == "tool" and sent[6]["tool_call_id"] == "t2" and "try again" in sent[6]["content"]


@pytest.mark.parametrize(
    ("output", "expect"),
    [
        (City, lambda body: body["tool_choice"] == "required" and body["tools"][0]["function"]["name"] == "final_result"),
        (NativeOutput(City), lambda body: body["response_format"]["type"] == "json_schema" and "tools" not in body),
        (
            PromptedOutput(City),  # the schema too: llama-cpp-python constrains json_object to it
            lambda body: body["response_format"]["type"] == "json_object"
            and body["response_format"]["schema"]["properties"].keys() == {"name", "population"},
        ),
    ],
    ids=["tool", "native", "prompted"],
)
async def test_output_modes(core: AtomaCore, sandbox: Sandbox, output: Any, expect: Any) -> None:
    result = await Agent(AtomaModel("sandbox-model", core), output_type=output).run("Oslo has 700000 people")
    assert result.output.population == 700000
    assert expect(chat_requests(sandbox)[-1])


async def test_streamed_text(core: AtomaCore) -> None:
    agent = Agent(AtomaModel("sandbox-model", core))
    async with agent.run_stream("one two three") as result:
        texts = [t async for t in result.stream_text(debounce_by=None)]
        assert result.is_complete
    assert texts[-1] == "You said: one two three" and len(texts) > 2
    assert (result.usage.requests, result.usage.input_tokens, result.usage.output_tokens) == (1, 6, 5)
    response = result.all_messages()[-1]
    assert isinstance(response, ModelResponse) and response.finish_reason == "stop"


async def test_streamed_structured(core: AtomaCore) -> None:
    agent = Agent(AtomaModel("sandbox-model", core), output_type=City)
    async with agent.run_stream("Rome 2800000") as result:
        outputs = [o async for o in result.stream_output(debounce_by=None)]
    assert outputs[-1] == City(name="Rome 2800000", population=2800000)
    assert result.usage.output_tokens > 0


async def test_an_agent_with_tools_end_to_end(core: AtomaCore, sandbox: Sandbox) -> None:
    agent = Agent(AtomaModel("sandbox-model", core), output_type=City)

    @agent.tool_plain
    def lookup(city: str) -> str:
        """Look a city up."""
        return f"{city} has 700000 people"

    result = await agent.run("Oslo")
    assert result.output == City(name="Oslo has 700000 people", population=700000)
    async with agent.run_stream("Bergen") as streamed:
        assert await streamed.get_output() == City(name="Bergen has 700000 people", population=700000)
    kinds = [type(p).__name__ for m in result.all_messages() for p in m.parts]
    assert kinds == ["UserPromptPart", "ToolCallPart", "ToolReturnPart", "ToolCallPart", "ToolReturnPart"]


async def test_confidential_agent_runs_sealed(core: AtomaCore, sandbox: Sandbox) -> None:
    pytest.importorskip("cryptography")
    agent = Agent(AtomaModel("sandbox-model", core, confidential=True), output_type=City)
    assert (await agent.run("Lima 9")).output == City(name="Lima 9", population=9)
    async with agent.run_stream("Quito 3") as result:
        assert await result.get_output() == City(name="Quito 3", population=3)
    paths = [r.path for r in sandbox.requests if "chat" in r.path]
    assert paths == ["/v1/confidential/chat/completions"] * 2
    assert all(b"Lima" not in r.raw for r in sandbox.requests)


async def test_errors_are_typed_and_streams_released(core: AtomaCore, sandbox: Sandbox) -> None:
    agent = Agent(AtomaModel("sandbox-model", core))
    sandbox.script(faults.status(400))
    with pytest.raises(BadRequestError):
        await agent.run("hi")
    async with agent.run_stream("one two three four") as result:
        async for _ in result.stream_text(delta=True, debounce_by=None):
            break
    assert acquired_connections(core) == 0


async def test_timeout_and_extra_headers_settings_apply_to_the_call(core: AtomaCore, sandbox: Sandbox) -> None:
    agent = Agent(AtomaModel("sandbox-model", core))
    await agent.run("hi", model_settings={"extra_headers": {"X-Trace": "t-1"}})
    assert sandbox.requests[-1].headers["X-Trace"] == "t-1"
    sandbox.script(faults.delay(1, times=None))  # every attempt (the SDK retries a timeout)
    with pytest.raises(RequestTimeoutError):
        await agent.run("hi", model_settings={"timeout": 0.1})


async def test_a_response_without_choices_is_a_typed_error() -> None:
    from atoma_core.errors import ResponseValidationError

    from .no_choices_server import core_of_a_server_without_choices

    async with core_of_a_server_without_choices() as empty:
        with pytest.raises(ResponseValidationError):
            await Agent(AtomaModel("sandbox-model", empty)).run("hi")


def test_run_sync_and_run_stream_sync() -> None:
    from atoma_core.testing import sandbox_in_thread

    with sandbox_in_thread() as sandbox:
        core = AtomaCore("token", sandbox.url)
        agent = Agent(AtomaModel("sandbox-model", core), output_type=City)
        assert agent.run_sync("Oslo 5").output == City(name="Oslo 5", population=5)
        with agent.run_stream_sync("Rome 6") as result:
            assert result.get_output() == City(name="Rome 6", population=6)


async def test_a_streamed_tool_call_arrives_as_part_deltas(core: AtomaCore, sandbox: Sandbox) -> None:
    from pydantic_ai.messages import PartDeltaEvent, PartStartEvent, ToolCallPartDelta
    from pydantic_ai.tools import ToolDefinition

    sandbox.script(faults.reply(tool_calls=[{"id": "c9", "name": "lookup", "arguments": {"query": "a long query"}}]))
    tool = ToolDefinition(name="lookup", parameters_json_schema={"type": "object", "properties": {"query": {"type": "string"}}})
    params = ModelRequestParameters(function_tools=[tool], allow_text_output=True)
    model = AtomaModel("sandbox-model", core)
    async with model.request_stream([ModelRequest.user_text_prompt("find it")], None, params) as stream:
        events = [event async for event in stream]
        response = stream.get()
    starts = [e for e in events if isinstance(e, PartStartEvent)]
    deltas = [e for e in events if isinstance(e, PartDeltaEvent) and isinstance(e.delta, ToolCallPartDelta)]
    assert len(starts) == 1 and isinstance(starts[0].part, ToolCallPart) and len(deltas) > 1
    assert response.parts == [ToolCallPart("lookup", '{"query": "a long query"}', tool_call_id="c9")]
    assert response.finish_reason == "tool_call" and response.usage.output_tokens > 0
    sent = chat_requests(sandbox)[-1]
    assert sent["tools"][0]["function"]["name"] == "lookup" and sent["tool_choice"] == "auto"
