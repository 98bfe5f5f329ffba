"""OpenTelemetry GenAI spans and metrics (`atoma_core.otel`) for plain calls against the sandbox:
the conventions' attributes, metrics, trace context on the wire, retries, failures, content
capture, installing and removing. Streams and other operations: test_otel_streams.py."""

from __future__ import annotations

import json
import sys

import pytest
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
from atoma_core.otel import CAPTURE_CONTENT_ENV, instrument
from atoma_core.testing import Sandbox, faults
from atoma_funcs import chat_create, chat_create_stream

from .conftest import CHAT, STREAM_CHAT, TOKEN
from .otel_support import SECRET, SECRET_CHAT, Telemetry, everything, port, telemetry, traced, traceparent
from .test_imports import imported_modules

__all__ = ["telemetry", "traced"]  # fixtures, imported for pytest

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
        "server.port": port(sandbox.url),
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
        "server.port": port(sandbox.url),
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
    assert headers["traceparent"] == traceparent(ours.context)
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
    assert len(sandbox.requests) == 3 and parents == {traceparent(span.context)}


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
    assert SECRET not in everything(traced)


# ------------------------------------------------------------------ content, secrets


async def test_no_content_and_no_token_by_default(
    core: AtomaCore, sandbox: Sandbox, traced: Telemetry
) -> None:
    assert (await chat_create(core, SECRET_CHAT)).ok
    stream = (await chat_create_stream(core, SECRET_CHAT)).unwrap()
    await stream.collect()
    recorded = everything(traced)
    assert len(traced.finished()) == 2
    assert SECRET not in recorded and TOKEN not in recorded
    assert "gen_ai.input.messages" not in recorded and "gen_ai.output.messages" not in recorded


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
    assert TOKEN not in everything(telemetry)


async def test_an_explicit_false_beats_the_environment(
    core: AtomaCore, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CAPTURE_CONTENT_ENV, "true")
    with telemetry.instrument(core, capture_content=False):
        assert (await chat_create(core, SECRET_CHAT)).ok
    assert SECRET not in everything(telemetry)


# ------------------------------------------------------------------ installing, removing


async def test_uninstrument_removes_everything(
    core: AtomaCore, sandbox: Sandbox, telemetry: Telemetry
) -> None:
    mine = Hooks(before_request=lambda ctx: None)
    core.add_hooks(mine)
    instrumentation = telemetry.instrument(core)
    with pytest.raises(errors.InvalidRequestError, match="instrumented already"):
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
    assert sent[-1]["traceparent"] == traceparent(handler.get_span_context())


def test_without_opentelemetry_instrument_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "atoma_core._otel_hooks", raising=False)
    with pytest.raises(errors.MissingDependencyError, match=r'pip install "atoma-async\[otel\]"') as caught:
        instrument(AtomaCore("t"))
    assert (caught.value.package, caught.value.extra) == ("opentelemetry-api", "otel")


def test_tracing_costs_no_import_until_instrument() -> None:
    assert not any(
        m.startswith("opentelemetry") for m in imported_modules("from atoma_funcs import chat_create")
    )
    modules = imported_modules("import atoma_core.otel")
    assert not any(m.startswith("opentelemetry") for m in modules)
    assert "atoma_core._otel_hooks" not in modules
