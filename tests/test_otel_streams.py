"""OpenTelemetry spans of streams (open while read, ended by every way a stream ends, time to
first chunk) and of the other GenAI operations (embeddings, text completions, confidential chat),
plus the attributes of their shapes."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import msgspec
import pytest
from opentelemetry.trace import StatusCode

from atoma_core import AtomaCore, errors
from atoma_core._otel_attributes import (
    input_messages,
    output_messages,
    request_attributes,
    response_attributes,
)
from atoma_core.models.chat import ChatCompletionRequest
from atoma_core.models.completions import CompletionChoice, CompletionRequest, CompletionResponse
from atoma_core.models.embeddings import Embedding, EmbeddingResponse, EmbeddingUsage
from atoma_core.models.usage import Usage
from atoma_core.testing import Sandbox, faults
from atoma_funcs import (
    chat_create_stream,
    completions_create_stream,
    confidential_chat_create_stream,
    embeddings_create,
)

from .conftest import STREAM_CHAT
from .otel_support import SECRET, SECRET_CHAT, Telemetry, everything, telemetry, traced, traceparent

__all__ = ["telemetry", "traced"]  # fixtures, imported for pytest

# ------------------------------------------------------------------ streams


async def test_a_stream_span_is_open_mid_stream_and_closed_at_its_end(
    core: AtomaCore, sandbox: Sandbox, traced: Telemetry
) -> None:
    stream = (await chat_create_stream(core, STREAM_CHAT)).unwrap()
    async with stream:
        async for _ in stream:
            assert traced.finished() == []
    assert stream.usage is not None
    span = traced.only_span()
    attributes = dict(span.attributes or {})
    assert attributes["gen_ai.request.stream"] is True
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert attributes["gen_ai.response.id"] == stream.partial.id
    assert attributes["gen_ai.usage.input_tokens"] == stream.usage.prompt_tokens
    assert attributes["gen_ai.usage.output_tokens"] == stream.usage.completion_tokens
    ttft = stream.metrics.time_to_first_token
    assert ttft is not None and attributes["gen_ai.response.time_to_first_chunk"] == ttft
    (first,) = traced.points("gen_ai.client.operation.time_to_first_chunk")
    assert first.count == 1 and first.sum == ttft
    (duration,) = traced.points("gen_ai.client.operation.duration")
    assert duration.sum == stream.metrics.elapsed > ttft


async def _break(stream: Any) -> None:
    async with stream:
        async for _ in stream:
            break


async def _aclose(stream: Any) -> None:
    await stream.__anext__()
    await stream.aclose()


@pytest.mark.parametrize("end", [_break, _aclose], ids=["break", "aclose"])
async def test_a_stream_left_early_ends_its_span(core: AtomaCore, traced: Telemetry, end: Any) -> None:
    stream = (await chat_create_stream(core, STREAM_CHAT)).unwrap()
    await end(stream)
    span = traced.only_span()
    assert span.status.status_code is StatusCode.UNSET
    assert "gen_ai.response.finish_reasons" not in (span.attributes or {})


async def test_a_cancelled_stream_ends_its_span_as_cancelled(
    core: AtomaCore, sandbox: Sandbox, traced: Telemetry
) -> None:
    sandbox.script(faults.stall(after_chunks=2))
    stream = (await chat_create_stream(core, STREAM_CHAT)).unwrap()
    two_chunks = asyncio.Event()

    async def drain() -> None:
        async with stream:
            async for _ in stream:
                if stream.metrics.chunks == 2:
                    two_chunks.set()

    task = asyncio.create_task(drain())
    await two_chunks.wait()
    assert traced.finished() == []
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    span = traced.only_span()
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "CancelledError"


async def test_a_broken_stream_ends_its_span_with_the_error(
    core: AtomaCore, sandbox: Sandbox, traced: Telemetry
) -> None:
    sandbox.script(faults.truncate(after_chunks=2))
    stream = (await chat_create_stream(core, STREAM_CHAT)).unwrap()
    assert (await stream.collect()).error.__class__ is errors.StreamTruncatedError
    span = traced.only_span()
    assert span.status.description == "StreamTruncatedError"
    assert (span.attributes or {})["error.type"] == "StreamTruncatedError"


async def test_an_abandoned_stream_ends_its_span(core: AtomaCore, traced: Telemetry) -> None:
    stream = (await chat_create_stream(core, STREAM_CHAT)).unwrap()
    with pytest.warns(ResourceWarning):
        del stream
        gc.collect()
    await asyncio.sleep(0)
    assert traced.only_span().name == "chat sandbox-model"


# ------------------------------------------------------------------ other operations


async def test_embeddings_span(core: AtomaCore, sandbox: Sandbox, traced: Telemetry) -> None:
    request = {"model": "embed-model", "input": ["a", "b"], "dimensions": 8, "encoding_format": "float"}
    resp = (await embeddings_create(core, request)).unwrap()
    span = traced.only_span()
    attributes = dict(span.attributes or {})
    assert span.name == "embeddings embed-model"
    assert attributes["gen_ai.operation.name"] == "embeddings"
    assert attributes["gen_ai.embeddings.dimension.count"] == 8
    assert attributes["gen_ai.request.encoding_formats"] == ("float",)
    assert resp.usage is not None and attributes["gen_ai.usage.input_tokens"] == resp.usage.prompt_tokens
    assert "gen_ai.usage.output_tokens" not in attributes


async def test_completions_stream_span(core: AtomaCore, sandbox: Sandbox, traced: Telemetry) -> None:
    stream = (
        await completions_create_stream(core, {"model": "m", "prompt": SECRET, "max_tokens": 5})
    ).unwrap()
    async with stream:
        async for _ in stream:
            pass
    span = traced.only_span()
    attributes = dict(span.attributes or {})
    assert span.name == "text_completion m"
    assert attributes["gen_ai.request.max_tokens"] == 5
    assert attributes["gen_ai.response.time_to_first_chunk"] > 0
    assert SECRET not in everything(traced)


async def test_confidential_chat_stream_span(core: AtomaCore, sandbox: Sandbox, traced: Telemetry) -> None:
    stream = (await confidential_chat_create_stream(core, SECRET_CHAT)).unwrap()
    response = (await stream.collect()).unwrap()
    chat = next(s for s in traced.finished() if s.name == "chat sandbox-model")
    attributes = dict(chat.attributes or {})
    assert response.usage is not None
    assert attributes["gen_ai.usage.output_tokens"] == response.usage.completion_tokens
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    sealed = sandbox.requests[-1]
    assert sealed.path == "/v1/confidential/chat/completions"
    assert sealed.headers["traceparent"] == traceparent(chat.context)
    assert SECRET not in everything(traced)


# ------------------------------------------------------------------ attributes of other shapes


def test_attributes_of_embeddings_and_text_completions() -> None:
    embedded = EmbeddingResponse(data=[Embedding([0.5])], model="e", usage=EmbeddingUsage(3, 3))
    assert response_attributes(embedded, embedded.usage) == {
        "gen_ai.response.model": "e",
        "gen_ai.usage.input_tokens": 3,
    }
    request = CompletionRequest(model="m", prompt="p", n=2, stop=["a", "b"], max_tokens=4)
    assert request_attributes(request) == {
        "gen_ai.request.max_tokens": 4,
        "gen_ai.request.stop_sequences": ["a", "b"],
        "gen_ai.request.choice.count": 2,
    }
    completed = CompletionResponse(
        choices=[CompletionChoice(text="hi", finish_reason="length")], id="c1", usage=Usage(1, 2, 3)
    )
    assert response_attributes(completed, completed.usage) == {
        "gen_ai.response.id": "c1",
        "gen_ai.response.finish_reasons": ["length"],
        "gen_ai.usage.input_tokens": 1,
        "gen_ai.usage.output_tokens": 2,
    }
    assert output_messages(completed) == (
        '[{"role":"assistant","parts":[{"type":"text","content":"hi"}],"finish_reason":"length"}]'
    )


def test_tool_calls_and_results_as_message_parts() -> None:
    request = msgspec.convert(
        {
            "model": "m",
            "response_format": {"type": "json_object"},
            "messages": [
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                    ],
                },
                {"role": "tool", "tool_call_id": "t1", "content": "42"},
            ],
        },
        ChatCompletionRequest,
    )
    assert request_attributes(request) == {"gen_ai.output.type": "json"}
    assert input_messages(request) == (
        '[{"role":"assistant","parts":[{"type":"tool_call","id":"t1","name":"f","arguments":"{}"}]},'
        '{"role":"tool","parts":[{"type":"tool_call_response","id":"t1","response":"42"}]}]'
    )
