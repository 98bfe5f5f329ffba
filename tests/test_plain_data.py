"""Plain data: every model has `to_dict()` / `to_json()` (the wire shape, `meta` left out), the way
back is msgspec's; `message.to_param()` keeps a history `json.dumps`-able; Atoma's `response_hash`
and `signature` are kept, typed, on responses and chunks."""

from __future__ import annotations

import json

import msgspec

from atoma_core import AtomaCore
from atoma_core.models import (
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    CompletionResponse,
    EmbeddingResponse,
    UserMessage,
)
from atoma_core.testing import Sandbox
from atoma_funcs import (
    chat_create,
    chat_create_stream,
    completions_create,
    completions_create_stream,
    embeddings_create,
)

from .conftest import CHAT, STREAM_CHAT

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "word_count",
            "parameters": {"type": "object", "properties": {"input": {"type": "string"}}},
        },
    }
]


async def test_a_response_round_trips_through_dict_and_json(core: AtomaCore) -> None:
    resp = (await chat_create(core, CHAT)).unwrap()
    assert resp.meta is not None
    data = resp.to_dict()
    assert "meta" not in data and data["choices"][0]["message"]["content"] == "You said: hello there"
    assert json.loads(json.dumps(data)) == data
    assert msgspec.convert(data, ChatCompletionResponse) == resp
    text = resp.to_json()
    assert json.loads(text) == data
    assert msgspec.json.decode(text, type=ChatCompletionResponse) == resp
    assert json.loads(resp.to_json(indent=2)) == data and "\n  " in resp.to_json(indent=2)
    meta = resp.meta.to_dict()  # for logs: the headers become a plain dict
    assert meta["attempts"] == 1 and meta["headers"]["X-Request-ID"] == resp.id


async def test_atoma_fields_are_typed_attributes(core: AtomaCore) -> None:
    resp = (await chat_create(core, CHAT)).unwrap()
    assert isinstance(resp.response_hash, str) and len(resp.response_hash) == 64
    assert resp.signature == "sandbox-signature"
    assert resp.to_dict()["response_hash"] == resp.response_hash
    legacy = (await completions_create(core, {"model": "c", "prompt": "hi"})).unwrap()
    assert isinstance(legacy, CompletionResponse) and legacy.signature == "sandbox-signature"


async def test_every_chunk_keeps_its_own_hash(core: AtomaCore) -> None:
    async with (await chat_create_stream(core, STREAM_CHAT)).unwrap() as stream:
        chunks = [chunk async for chunk in stream]
    hashes = [c.response_hash for c in chunks]
    assert all(isinstance(h, str) for h in hashes) and len(set(hashes)) == len(chunks)
    assert all(c.signature == "sandbox-signature" for c in chunks)
    assert [msgspec.convert(c.to_dict(), ChatCompletionChunk) for c in chunks] == chunks
    # the accumulated answer is not any one chunk: it carries no hash of its own
    assert stream.partial.response_hash is None and stream.partial.signature is None
    async with (await completions_create_stream(core, {"model": "c", "prompt": "a b"})).unwrap() as legacy:
        assert all(c.response_hash for c in [c async for c in legacy])


async def test_a_tool_calling_history_is_json(core: AtomaCore, sandbox: Sandbox) -> None:
    messages: list[dict[str, object]] = [{"role": "user", "content": "count these words"}]
    resp = (await chat_create(core, {"model": "m", "messages": messages, "tools": TOOLS})).unwrap()
    call = resp.choices[0].message.tool_calls
    assert call
    messages.append(resp.choices[0].message.to_param())
    messages.append({"role": "tool", "tool_call_id": call[0].id, "content": "3"})
    stored = json.loads(json.dumps(messages))  # e.g. kept in a session store between turns
    answer = (await chat_create(core, {"model": "m", "messages": stored, "tools": TOOLS})).unwrap()
    assert answer.choices[0].message.content == "Tool said: 3"
    assert sandbox.requests[-1].json["messages"][1] == stored[1]


async def test_to_param_also_fits_a_typed_request(core: AtomaCore) -> None:
    resp = (
        await chat_create(
            core, {"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": TOOLS}
        )
    ).unwrap()
    request = msgspec.convert(
        {"model": "m", "messages": [UserMessage(content="x").to_dict(), resp.choices[0].message.to_param()]},
        ChatCompletionRequest,
    )
    assert request.messages[1].to_dict()["content"] == ""


def test_requests_leave_unset_fields_out() -> None:
    request = ChatCompletionRequest(model="m", messages=[UserMessage(content="hi")], temperature=None)
    assert request.to_dict() == {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": None,
    }
    assert request.to_json() == msgspec.json.encode(request).decode()


async def test_other_responses_and_stream_metrics_too(core: AtomaCore) -> None:
    emb = (await embeddings_create(core, {"model": "e", "input": ["a", "b"]})).unwrap()
    assert isinstance(emb, EmbeddingResponse)
    assert msgspec.convert(emb.to_dict(), EmbeddingResponse) == emb
    async with (await chat_create_stream(core, CHAT)).unwrap() as stream:
        await stream.collect()
    metrics = stream.metrics.to_dict()
    assert metrics["chunks"] == 7 and json.loads(stream.metrics.to_json()) == metrics
