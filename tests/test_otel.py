"""OpenTelemetry GenAI spans and metrics (`atoma_core.otel`) against the sandbox, read back with
opentelemetry-sdk's in-memory span exporter and metric reader."""

from __future__ import annotations

import asyncio
import gc
import json
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    StatusCode,
    TraceFlags,
    TraceState,
    set_span_in_context,
)

from atoma_core import AtomaCore, Hooks, errors
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
from atoma_core.otel import CAPTURE_CONTENT_ENV, Instrumentation, instrument
from atoma_core.testing import Sandbox, faults
from atoma_funcs import (
    chat_create,
    chat_create_stream,
    completions_create_stream,
    confidential_chat_create_stream,
    embeddings_create,
)

from .conftest import CHAT, STREAM_CHAT, TOKEN
from .test_imports import imported_modules

SECRET = "my-confidential-phrase-42"
SECRET_CHAT = {"model": "sandbox-model", "messages": [{"role": "user", "content": SECRET}]}


class Telemetry:
    """An SDK tracer provider and meter provider that keep everything in memory."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def only_span(self) -> ReadableSpan:
        spans = self.finished()
        assert len(spans) == 1, [s.name for s in spans]
        return spans[0]

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        found = []
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found += list(metric.data.data_points)
        return found

    def instrument(self, core: AtomaCore, **kw: Any) -> Instrumentation:
        return instrument(
            core, tracer_provider=self.tracer_provider, meter_provider=self.meter_provider, **kw
        )


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    t = Telemetry()
    yield t
    t.tracer_provider.shutdown()
    t.meter_provider.shutdown()


@pytest.fixture
async def traced(core: AtomaCore, telemetry: Telemetry) -> AsyncIterator[Telemetry]:
    with telemetry.instrument(core):
        yield telemetry


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def _traceparent(context: SpanContext) -> str:
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def _everything(telemetry: Telemetry) -> str:
    """All that was recorded, spans and metrics, as one string to search."""
    parts = []
    for span in telemetry.finished():
        parts += [span.name, str(dict(span.attributes or {})), str(span.status.description)]
        parts += [f"{e.name} {dict(e.attributes or {})}" for e in span.events]
    data = telemetry.reader.get_metrics_data()
    parts.append(data.to_json() if data else "")
    return "\n".join(parts)


# ------------------------------------------------------------------ chat


async def test_chat_span_follows_the_genai_conventions(
    core: AtomaCore, sandbox: Sandbox, traced: Telemetry
) -> None:
    request = {
        **CHAT,
        "temperature": 0.2,
        "top_p": 0.9,
        "max_completion_tokens": 64,
        "stop": "END",
        "seed": 7,
    }
    resp = (await chat_create(core, request)).unwrap()
    span = traced.only_span()
    assert span.name == "chat sandbox-model"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert resp.usage is not None
    assert dict(span.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "atoma",
        "gen_ai.request.model": "sandbox-model",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.top_p": 0.9,
        "gen_ai.request.max_tokens": 64,
        "gen_ai.request.stop_sequences": ("END",),
        "gen_ai.request.seed": 7,
        "server.address": "127.0.0.1",
        "server.port": _port(sandbox.url),
        "gen_ai.response.id": resp.id,
        "gen_ai.response.model": resp.model,
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": resp.usage.prompt_tokens,
        "gen_ai.usage.output_tokens": resp.usage.completion_tokens,
    }
    assert [(e.name, dict(e.attributes or {})) for e in span.events] == [
        ("atoma.attempt", {"atoma.attempt": 1, "http.response.status_code": 200})
    ]


async def test_chat_metrics(core: AtomaCore, sandbox: Sandbox, traced: Telemetry) -> None:
    resp = (await chat_create(core, CHAT)).unwrap()
    assert resp.usage is not None
    (duration,) = traced.points("gen_ai.client.operation.duration")
    assert duration.count == 1 and 0 < duration.sum < 5
    assert dict(duration.attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "atoma",
        "gen_ai.request.model": "sandbox-model",
        "gen_ai.response.model": resp.model,
        "server.address": "127.0.0.1",
        "server.port": _port(sandbox.url),
    }
    tokens = {p.attributes["gen_ai.token.type"]: p.sum for p in traced.points("gen_ai.client.token.usage")}
    assert tokens == {"input": resp.usage.prompt_tokens, "output": resp.usage.completion_tokens}
    assert traced.points("gen_ai.client.operation.time_to_first_chunk") == []  # not a stream


async def test_traceparent_and_tracestate_reach_the_server(
    core: AtomaCore, sandbox: Sandbox, traced: Telemetry
) -> None:
    parent = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("caller", "t61rcWkgMzE")]),
    )
    context = set_span_in_context(NonRecordingSpan(parent))
    tracer = traced.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("handler", context=context):
        assert (await chat_create(core, CHAT)).ok
    ours = next(s for s in traced.finished() if s.name.startswith("chat"))
    assert ours.context.trace_id == parent.trace_id  # one trace: caller, SDK, server
    headers = sandbox.requests[-1].headers
    assert headers["traceparent"] == _traceparent(ours.context)
    assert headers["tracestate"] == "caller=t61rcWkgMzE"


async def test_retries_are_attempt_events_on_one_span(
    core: AtomaCore, sandbox: Sandbox, traced: Telemetry
) -> None:
    sandbox.script(faults.status(503), faults.reset())
    assert (await chat_create(core, CHAT)).ok
    span = traced.only_span()
    assert [dict(e.attributes or {}) for e in span.events] == [
        {"atoma.attempt": 1, "http.response.status_code": 503, "error.type": "InternalServerError"},
        {"atoma.attempt": 2, "error.type": "APIConnectionError"},
        {"atoma.attempt": 3, "http.response.status_code": 200},
    ]
    parents = {r.headers["traceparent"] for r in sandbox.requests}
    assert len(sandbox.requests) == 3 and parents == {_traceparent(span.context)}


async def test_a_failure_is_status_error_with_error_type(
    core: AtomaCore, sandbox: Sandbox, traced: Telemetry
) -> None:
    body = json.dumps({"error": {"code": "REQUEST_ERROR", "message": SECRET}})
    sandbox.script(faults.status(400, body=body, content_type="application/json"))
    res = await chat_create(core, CHAT)
    assert isinstance(res.error, errors.BadRequestError)
    span = traced.only_span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "BadRequestError 400 REQUEST_ERROR"  # never the server's text
    assert span.attributes is not None and span.attributes["error.type"] == "BadRequestError"
    assert "gen_ai.response.id" not in span.attributes
    (duration,) = traced.points("gen_ai.client.operation.duration")
    assert duration.attributes["error.type"] == "BadRequestError"
    assert SECRET not in _everything(traced)


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
    assert SECRET not in _everything(traced)


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
    assert sealed.headers["traceparent"] == _traceparent(chat.context)
    assert SECRET not in _everything(traced)


# ------------------------------------------------------------------ content, secrets


async def test_no_content_and_no_token_by_default(
    core: AtomaCore, sandbox: Sandbox, traced: Telemetry
) -> None:
    assert (await chat_create(core, SECRET_CHAT)).ok
    stream = (await chat_create_stream(core, SECRET_CHAT)).unwrap()
    await stream.collect()
    everything = _everything(traced)
    assert len(traced.finished()) == 2
    assert SECRET not in everything and TOKEN not in everything
    assert "gen_ai.input.messages" not in everything and "gen_ai.output.messages" not in everything


@pytest.mark.parametrize("how", ["argument", "environment"])
async def test_content_when_opted_in(
    core: AtomaCore, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    if how == "environment":
        monkeypatch.setenv(CAPTURE_CONTENT_ENV, "true")
    with telemetry.instrument(core, capture_content=True if how == "argument" else None):
        chat = {
            **SECRET_CHAT,
            "messages": [{"role": "system", "content": "Be brief."}, *SECRET_CHAT["messages"]],
        }
        (await (await chat_create_stream(core, chat)).unwrap().collect()).unwrap()
    attributes = dict(telemetry.only_span().attributes or {})
    assert attributes["gen_ai.input.messages"] == (
        '[{"role":"system","parts":[{"type":"text","content":"Be brief."}]},'
        f'{{"role":"user","parts":[{{"type":"text","content":"{SECRET}"}}]}}]'
    )
    assert attributes["gen_ai.output.messages"] == (
        f'[{{"role":"assistant","parts":[{{"type":"text","content":"You said: {SECRET}"}}],"finish_reason":"stop"}}]'
    )
    assert TOKEN not in _everything(telemetry)


async def test_an_explicit_false_beats_the_environment(
    core: AtomaCore, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CAPTURE_CONTENT_ENV, "true")
    with telemetry.instrument(core, capture_content=False):
        assert (await chat_create(core, SECRET_CHAT)).ok
    assert SECRET not in _everything(telemetry)


# ------------------------------------------------------------------ installing, removing


async def test_uninstrument_removes_everything(
    core: AtomaCore, sandbox: Sandbox, telemetry: Telemetry
) -> None:
    mine = Hooks(before_request=lambda ctx: None)
    core.add_hooks(mine)
    instrumentation = telemetry.instrument(core)
    with pytest.raises(ValueError, match="instrumented already"):
        telemetry.instrument(core)
    assert (await chat_create(core, CHAT)).ok
    assert "traceparent" in sandbox.requests[-1].headers
    instrumentation.uninstrument()
    instrumentation.uninstrument()  # idempotent
    assert core.hooks == (mine,)
    assert (await chat_create(core, CHAT)).ok
    assert len(telemetry.finished()) == 1
    assert "traceparent" not in sandbox.requests[-1].headers
    (duration,) = telemetry.points("gen_ai.client.operation.duration")
    assert duration.count == 1
    telemetry.instrument(core).uninstrument()  # may be instrumented again


async def test_an_open_stream_still_ends_its_span_after_uninstrument(
    core: AtomaCore, telemetry: Telemetry
) -> None:
    with telemetry.instrument(core):
        stream = (await chat_create_stream(core, STREAM_CHAT)).unwrap()
    assert core.hooks == ()
    await stream.collect()
    assert telemetry.only_span().status.status_code is StatusCode.UNSET


async def test_other_operations_carry_the_callers_trace_without_a_span(
    core: AtomaCore, sandbox: Sandbox, traced: Telemetry
) -> None:
    from atoma_funcs import health  # the sandbox does not record /health: a hook of ours looks

    sent: list[dict[str, str]] = []
    core.add_hooks(Hooks(before_request=lambda ctx: sent.append(dict(ctx.request_headers))))
    tracer = traced.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("handler") as handler:
        assert (await health(core)).ok
    assert [s.name for s in traced.finished()] == ["handler"]
    assert sent[-1]["traceparent"] == _traceparent(handler.get_span_context())


def test_without_opentelemetry_instrument_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "atoma_core._otel_hooks", raising=False)
    with pytest.raises(ImportError, match=r'pip install "atoma-async\[otel\]"'):
        instrument(AtomaCore("t"))


def test_tracing_costs_no_import_until_instrument() -> None:
    assert not any(
        m.startswith("opentelemetry") for m in imported_modules("from atoma_funcs import chat_create")
    )
    modules = imported_modules("import atoma_core.otel")
    assert not any(m.startswith("opentelemetry") for m in modules)
    assert "atoma_core._otel_hooks" not in modules


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
