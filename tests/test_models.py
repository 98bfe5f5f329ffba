"""The request schema: every field round-trips, unset fields are omitted, explicit None is null;
responses and chunks decode leniently."""

from __future__ import annotations

import json

import msgspec
import pytest

from atoma_core.models import (
    AssistantMessage,
    ChatCompletionChunk,
    ChatCompletionNamedFunction,
    ChatCompletionNamedToolChoice,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatCompletionResponseMessage,
    FunctionDefinition,
    ImageContentPart,
    ImageURL,
    JsonSchemaResponseFormat,
    ResponseFormat,
    StreamOptions,
    SystemMessage,
    TextContentPart,
    Tool,
    ToolCall,
    ToolCallFunction,
    ToolMessage,
    UserMessage,
)

FULL_REQUEST = {
    "model": "meta-llama/Llama-3.3-70B-Instruct",
    "messages": [
        {"role": "system", "content": "be brief", "name": "sys"},
        {"role": "developer", "content": "dev note"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
            ],
            "name": "ann",
        },
        {
            "role": "assistant",
            "content": "",
            "refusal": None,
            "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": "{}"}, "type": "function"}],
        },
        {"role": "tool", "content": "42", "tool_call_id": "c1"},
    ],
    "frequency_penalty": 0.5,
    "function_call": "auto",
    "functions": [{"name": "legacy"}],
    "logit_bias": {"1234": -100.0},
    "logprobs": True,
    "max_completion_tokens": 64,
    "max_tokens": 32,
    "n": 2,
    "parallel_tool_calls": False,
    "presence_penalty": -0.5,
    "response_format": {
        "type": "json_schema",
        "json_schema": {"name": "answer", "description": "d", "schema": {"type": "object"}, "strict": True},
    },
    "seed": 123,
    "service_tier": "auto",
    "stop": ["stop", "halt"],
    "stream": False,
    "stream_options": {"include_usage": True},
    "temperature": 0.7,
    "tool_choice": {"type": "function", "function": {"name": "f"}},
    "tools": [
        {
            "type": "function",
            "function": {"name": "f", "description": "d", "parameters": {"type": "object"}, "strict": False},
        }
    ],
    "top_logprobs": 3,
    "top_p": 0.9,
    "user": "user-1",
}


def test_every_request_field_round_trips() -> None:
    req = msgspec.convert(FULL_REQUEST, ChatCompletionRequest)
    assert msgspec.json.decode(msgspec.json.encode(req)) == FULL_REQUEST
    names = {f.encode_name for f in msgspec.structs.fields(ChatCompletionRequest)}
    assert names == set(FULL_REQUEST), "the round-trip fixture must cover every request field"


def test_typed_construction_matches_the_dict_form() -> None:
    req = ChatCompletionRequest(
        model="m",
        messages=[
            SystemMessage(content="s"),
            UserMessage(content=[TextContentPart(text="t"), ImageContentPart(image_url=ImageURL(url="u"))]),
            AssistantMessage(
                tool_calls=[ToolCall(id="c", function=ToolCallFunction(name="f", arguments="{}"))]
            ),
            ToolMessage(content="r", tool_call_id="c"),
        ],
        tools=[Tool(function=FunctionDefinition(name="f"))],
        tool_choice=ChatCompletionNamedToolChoice(function=ChatCompletionNamedFunction(name="f")),
        response_format=ResponseFormat(type="json_schema", json_schema=JsonSchemaResponseFormat(name="a")),
        stream_options=StreamOptions(include_usage=True),
    )
    wire = msgspec.json.decode(msgspec.json.encode(req))
    assert wire["messages"][1]["content"][1] == {"type": "image_url", "image_url": {"url": "u"}}
    assert wire["messages"][2] == {
        "role": "assistant",
        "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{}"}, "type": "function"}],
    }
    assert wire["tool_choice"] == {"function": {"name": "f"}, "type": "function"}
    assert msgspec.convert(wire, ChatCompletionRequest) == req


def test_unset_is_omitted_and_explicit_none_is_null() -> None:
    req = ChatCompletionRequest(model="m", messages=[], temperature=None)
    assert msgspec.json.encode(req) == b'{"model":"m","messages":[],"temperature":null}'


@pytest.mark.parametrize("stop", ["END", ["a", "b"], None])
def test_stop_accepts_string_list_or_null(stop: object) -> None:
    req = msgspec.convert({"model": "m", "messages": [], "stop": stop}, ChatCompletionRequest)
    assert req.stop == stop


def test_response_message_to_param_round_trip() -> None:
    call = ToolCall(id="c", function=ToolCallFunction(name="f", arguments='{"a":1}'))
    msg = ChatCompletionResponseMessage(content=None, tool_calls=[call])
    param = msg.to_param()
    assert param == {
        "role": "assistant",
        "content": "",  # the proxy refuses null content on a tool-call turn
        "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": '{"a":1}'}, "type": "function"}],
    }
    assert json.loads(json.dumps(param)) == param
    assert msgspec.convert(param, AssistantMessage) == AssistantMessage(content="", tool_calls=[call])


def test_chunk_decodes_leniently() -> None:
    raw = (
        b'{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","response_hash":"h",'
        b'"signature":"s","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":'
        b'{"arguments":"{\\"a"}}]},"finish_reason":null,"stop_reason":"###","logprobs":null}],"usage":null}'
    )
    chunk = msgspec.json.decode(raw, type=ChatCompletionChunk)
    call = chunk.choices[0].delta.tool_calls[0]  # type: ignore[index]
    assert (call.id, call.type, call.function.arguments) == (None, None, '{"a')  # type: ignore[union-attr]
    assert chunk.choices[0].stop_reason == "###"
    usage_only = msgspec.json.decode(b'{"choices":[],"usage":{"prompt_tokens":1}}', type=ChatCompletionChunk)
    assert usage_only.choices == [] and usage_only.usage is not None


def test_responses_require_choices() -> None:
    with pytest.raises(msgspec.ValidationError, match="choices"):
        msgspec.json.decode(b'{"id": "x"}', type=ChatCompletionResponse)
    with pytest.raises(msgspec.ValidationError, match="choices"):
        msgspec.json.decode(b'{"error": {"message": "x"}}', type=ChatCompletionChunk)
