"""`ChatAtoma` and `AtomaEmbeddings` beyond LangChain's standard suites: what goes on the wire for
every message kind, Atoma's metadata, confidential chat, typed errors (and LangChain's own retry
and fallback on them), streams closed on every exit, cancellation, and the token kept out of sight.
All against the sandbox over loopback HTTP."""

from __future__ import annotations

import asyncio
import gc
import json
from typing import Any

import pytest

pytest.importorskip("langchain_core", reason="the dev extra installs langchain-core")

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from pydantic import BaseModel

from atoma_core import AtomaCore
from atoma_core.errors import BadRequestError, InternalServerError, StreamInterruptedError
from atoma_core.testing import Sandbox, faults, sandbox_in_thread
from atoma_funcs.integrations.langchain import AtomaEmbeddings, ChatAtoma

from .conftest import TOKEN, acquired_connections

PNG = "data:image/png;base64,iVBORw0KGgo="


class Weather(BaseModel):
    """The weather in a city."""

    city: str
    degrees: int


@tool
def get_weather(city: str) -> str:
    """Look up the weather."""
    return f"sunny in {city}"


def chat(core: AtomaCore, **kwargs: Any) -> ChatAtoma:
    return ChatAtoma(model="sandbox-model", core=core, **kwargs)


async def test_every_message_kind_is_sent_as_atoma_takes_it(core: AtomaCore, sandbox: Sandbox) -> None:
    history = [
        SystemMessage("be brief"),
        HumanMessage([{"type": "text", "text": "what is this?"}, {"type": "image", "base64": "iVBORw0KGgo=", "mime_type": "image/png"}], name="ann"),
        AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Oslo"}, "id": "c1", "type": "tool_call"}]),
        ToolMessage("sunny", tool_call_id="c1"),
        AIMessage([{"type": "text", "text": "It is sunny."}, {"type": "tool_use", "id": "x", "name": "n", "input": {}}]),
        HumanMessage("thanks"),
    ]
    answer = await chat(core, temperature=0.5, max_tokens=40, stop=["END"], model_kwargs={"top_k": 3}).ainvoke(history)
    assert answer.content == "You said: thanks"
    sent = sandbox.requests[-1].json
    assert sent["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "name": "ann", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": PNG}},
        ]},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}},
        ]},
        {"role": "tool", "content": "sunny", "tool_call_id": "c1"},
        {"role": "assistant", "content": "It is sunny."},
        {"role": "user", "content": "thanks"},
    ]
    assert (sent["temperature"], sent["max_tokens"], sent["stop"], sent["top_k"]) == (0.5, 40, ["END"], 3)
    assert sent["stream"] is False


async def test_metadata_usage_and_model_override(core: AtomaCore) -> None:
    answer = await chat(core).ainvoke("hello there", model="other-model")
    assert answer.response_metadata["finish_reason"] == "stop"
    assert answer.response_metadata["model_name"] == "other-model"
    assert len(answer.response_metadata["response_hash"]) == 64
    assert answer.usage_metadata is not None and answer.usage_metadata["total_tokens"] > 0


async def test_a_streamed_tool_call_arrives_as_chunks_and_merges(core: AtomaCore, sandbox: Sandbox) -> None:
    model = chat(core).bind_tools([get_weather], tool_choice="get_weather")
    chunks = [chunk async for chunk in model.astream("weather in Bergen")]
    assert any(chunk.tool_call_chunks for chunk in chunks)
    full = chunks[0]
    for chunk in chunks[1:]:
        full += chunk
    assert full.tool_calls == [{"name": "get_weather", "args": {"city": "weather in Bergen"}, "id": full.tool_calls[0]["id"], "type": "tool_call"}]
    assert [c for c in chunks if c.usage_metadata] == [chunks[-2]]  # once, on the usage chunk
    assert full.response_metadata["finish_reason"] == "tool_calls"
    sent = sandbox.requests[-1].json
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


async def test_with_structured_output_defaults_to_json_schema(core: AtomaCore, sandbox: Sandbox) -> None:
    result = await chat(core).with_structured_output(Weather).ainvoke("Oslo is at 12 degrees")
    assert result == Weather(city="Oslo is at 12 degrees", degrees=12)
    fmt = sandbox.requests[-1].json["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "Weather"
    raw = await chat(core).with_structured_output(Weather, method="function_calling", include_raw=True).ainvoke("Rome 30")
    assert raw["parsed"] == Weather(city="Rome 30", degrees=30) and raw["parsing_error"] is None
    assert isinstance(raw["raw"], AIMessage) and raw["raw"].tool_calls
    tool = sandbox.requests[-1].json["tools"][0]["function"]
    assert tool["name"] == "Weather" and tool["strict"] is True  # chat_parse's strict tool mode


async def test_structured_output_modes_streams_and_misfits(core: AtomaCore, sandbox: Sandbox) -> None:
    from atoma_core.errors import LengthFinishReasonError, OutputValidationError

    json_mode = chat(core).with_structured_output(Weather, method="json_mode")
    assert await json_mode.ainvoke("Oslo 3") == Weather(city="Oslo 3", degrees=3)
    sent = sandbox.requests[-1].json
    assert sent["response_format"]["type"] == "json_object" and '"degrees"' in sent["messages"][0]["content"]
    assert sent["response_format"]["schema"]["required"] == ["city", "degrees"]  # llama-cpp-python's grammar
    as_dict = chat(core).with_structured_output(Weather.model_json_schema())
    assert await as_dict.ainvoke("Rome 9") == {"city": "Rome 9", "degrees": 9}
    streamed = [part async for part in chat(core, confidential=True).with_structured_output(Weather).astream("Lima 4")]
    assert streamed == [Weather(city="Lima 4", degrees=4)]
    sandbox.script(faults.reply('{"city": "Oslo"}'))
    with pytest.raises(OutputValidationError):
        await chat(core).with_structured_output(Weather).ainvoke("Oslo")
    # Cut off by max_tokens: the same typed error streamed as invoked (not a misfit).
    for how in ("ainvoke", "astream"):
        cut = chat(core, max_tokens=3).with_structured_output(Weather)
        with pytest.raises(LengthFinishReasonError):
            await cut.ainvoke("Oslo 12") if how == "ainvoke" else [x async for x in cut.astream("Oslo 12")]


async def test_confidential_chat_is_sealed_and_opened(core: AtomaCore, sandbox: Sandbox) -> None:
    pytest.importorskip("cryptography")
    model = chat(core, confidential=True)
    answer = await model.ainvoke("a secret")
    assert answer.content == "You said: a secret"
    streamed = "".join([str(c.content) async for c in model.astream("another secret")])
    assert streamed == "You said: another secret"
    paths = [r.path for r in sandbox.requests]
    assert paths.count("/v1/confidential/chat/completions") == 2
    assert all("secret" not in r.raw.decode() for r in sandbox.requests if r.path.startswith("/v1/confidential"))


async def test_errors_are_the_sdks_typed_errors_and_langchain_retries_them(core: AtomaCore, sandbox: Sandbox) -> None:
    sandbox.script(faults.status(400))
    with pytest.raises(BadRequestError):
        await chat(core).ainvoke("hi")
    # The SDK retries a 500 itself (twice here); LangChain's with_retry then sees a success.
    sandbox.script(faults.status(500, times=2))
    assert (await chat(core).with_retry(stop_after_attempt=2).ainvoke("hi")).content == "You said: hi"
    # No SDK retries: the typed error reaches with_retry, which retries on exactly that type.
    sandbox.script(faults.status(500))
    model = ChatAtoma(model="sandbox-model", base_url=sandbox.url, api_key=TOKEN, max_retries=0)
    retried = model.with_retry(retry_if_exception_type=(InternalServerError,), stop_after_attempt=2)
    assert (await retried.ainvoke("hi")).content == "You said: hi"
    sandbox.script(faults.status(500))
    fallback = model.with_fallbacks([chat(core)], exceptions_to_handle=(InternalServerError,))
    assert (await fallback.ainvoke("hi")).content == "You said: hi"
    await model._atoma_core().close()


async def test_a_stream_broken_midway_raises_and_releases_the_connection(core: AtomaCore, sandbox: Sandbox) -> None:
    sandbox.script(faults.reset(after_chunks=2))
    with pytest.raises(StreamInterruptedError):
        async for _ in chat(core).astream("one two three"):
            pass
    assert acquired_connections(core) == 0


async def test_leaving_a_stream_early_or_cancelling_closes_it(core: AtomaCore, sandbox: Sandbox) -> None:
    agen = chat(core).astream("one two three four")
    async for _ in agen:
        break
    await agen.aclose()
    assert acquired_connections(core) == 0
    sandbox.script(faults.stall(after_chunks=1))

    async def read() -> None:
        async for _ in chat(core).astream("one two"):
            pass

    task = asyncio.create_task(read())
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert acquired_connections(core) == 0


def test_sync_calls_run_on_the_models_loop_thread() -> None:
    with sandbox_in_thread(token=TOKEN) as sandbox:
        model = ChatAtoma(model="sandbox-model", base_url=sandbox.url, api_key=TOKEN)
        assert model.invoke("hi").content == "You said: hi"
        chunks = model.stream("one two three")
        next(chunks)
        chunks.close()  # leaving early closes the stream on the loop thread
        assert "".join(str(c.content) for c in model.stream("a b")) == "You said: a b"
        embeddings = AtomaEmbeddings("e", base_url=sandbox.url, api_key=TOKEN, chunk_size=2)
        vectors = embeddings.embed_documents(["a", "b", "c", "d", "e"])
        assert len(vectors) == 5 and vectors[0] == embeddings.embed_query("a")
        assert [len(r.json["input"]) for r in sandbox.requests if r.path == "/v1/embeddings"] == [2, 2, 1, 1]
        del model, embeddings, chunks
        gc.collect()  # their loop threads close their sessions: no ResourceWarning


def test_the_token_is_never_shown() -> None:
    model = ChatAtoma(model="m", api_key="sk-very-secret", base_url="http://127.0.0.1:9")
    shown = repr(model) + str(model) + json.dumps(model.model_dump(), default=str) + repr(model._atoma_core())
    assert "sk-very-secret" not in shown
    assert "sk-very-secret" not in repr(AtomaEmbeddings("e", api_key="sk-very-secret"))


def test_bad_input_is_a_typed_error() -> None:
    from atoma_core.errors import InvalidRequestError

    model = ChatAtoma(model="m", api_key="k", base_url="http://127.0.0.1:9")
    with pytest.raises(InvalidRequestError):
        model.invoke([HumanMessage([{"type": "audio", "base64": "AAAA", "mime_type": "audio/wav"}])])
    with pytest.raises(InvalidRequestError):
        model.invoke("hi", temperature="hot")


async def test_streaming_true_streams_invoke_and_confidential_embeddings(core: AtomaCore, sandbox: Sandbox) -> None:
    pytest.importorskip("cryptography")
    answer = await chat(core, streaming=True).ainvoke("one two")
    assert answer.content == "You said: one two" and answer.usage_metadata is not None
    assert sandbox.requests[-1].json["stream"] is True
    embeddings = AtomaEmbeddings("e", core=core, confidential=True, dimensions=4)
    vectors = await embeddings.aembed_documents(["a", "b"])
    assert [len(v) for v in vectors] == [4, 4]
    assert sandbox.requests[-1].path == "/v1/confidential/embeddings"
    plain = await AtomaEmbeddings("e", core=core, dimensions=4).aembed_documents(["a", "b"])
    assert vectors == plain  # the same vectors, decrypted


async def test_a_response_without_choices_is_a_typed_error() -> None:
    from atoma_core.errors import ResponseValidationError

    from .no_choices_server import core_of_a_server_without_choices

    async with core_of_a_server_without_choices() as empty:
        with pytest.raises(ResponseValidationError):
            await chat(empty).ainvoke("hi")
