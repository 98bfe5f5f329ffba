"""The hooks behind `atoma_core.otel`: a GenAI CLIENT span per call, an event per attempt, the
trace context on every request, duration / token / time-to-first-chunk histograms at the end.

Imports OpenTelemetry (the `otel` extra); loaded by `instrument()` only. Per stream chunk it does
nothing: everything it reports at a stream's end comes from the stream's own counters.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from opentelemetry import metrics, trace
from opentelemetry.propagate import inject
from opentelemetry.trace import SpanKind, Status, StatusCode

from ._errormap import describe
from ._events import EventStream
from ._otel_attributes import (
    OPERATIONS,
    PROVIDER,
    input_messages,
    output_messages,
    request_attributes,
    response_attributes,
    server_attributes,
)
from ._version import __version__
from .config import Hooks
from .errors import AtomaError

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import Span, TracerProvider

    from .config import CallInfo, CircuitChange, HookContext

__all__ = ["Telemetry"]

log = logging.getLogger("atoma")
A = TypeVar("A")

SCOPE = "atoma_core.otel"
# The conventions' advisory bucket boundaries for these histograms.
_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
_TOKEN_BUCKETS = tuple(4.0**i for i in range(14))  # 1, 4, 16, ... 67108864


class _Call:
    """One traced call: its span and the attributes its metrics share."""

    __slots__ = ("metric_attributes", "span")

    def __init__(self, span: Span, metric_attributes: dict[str, Any]) -> None:
        self.span = span
        self.metric_attributes = metric_attributes


class Telemetry:
    """A tracer, three histograms and the `Hooks` that feed them, for one instrumented core."""

    def __init__(
        self,
        tracer_provider: TracerProvider | None,
        meter_provider: MeterProvider | None,
        capture_content: bool,
    ) -> None:
        self.tracer = trace.get_tracer(SCOPE, __version__, tracer_provider)
        meter = metrics.get_meter(SCOPE, __version__, meter_provider)
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self.tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
        )
        self.first_chunk = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk",
            unit="s",
            description="Time to receive the first chunk in a streaming operation.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self.circuit_changes = meter.create_counter(
            "atoma.circuit.changes",
            unit="{change}",
            description="Circuit breaker state changes, by server, model and new state.",
        )
        self.capture_content = capture_content
        self.failed = False  # an error of the instrumentation was logged already
        after_attempt = self._contained(self.after_attempt)
        self.hooks = Hooks(
            on_circuit_change=self._contained(self.on_circuit_change),
            on_call_start=self._contained(self.on_call_start),
            before_request=self._contained(self.before_request),
            after_success=after_attempt,
            after_error=after_attempt,
            on_call_end=self._contained(self.on_call_end),
        )

    def _contained(self, hook: Callable[[A], None]) -> Callable[[A], None]:
        """`hook`, with its own failures (a span processor or exporter that raises, say) logged,
        once per instrumentation, and swallowed: tracing never fails a call."""

        def contained(value: A) -> None:
            try:
                hook(value)
            except Exception:
                if self.failed:
                    log.debug(
                        "OpenTelemetry instrumentation failed again in %s", hook.__name__, exc_info=True
                    )
                    return
                self.failed = True
                log.warning(
                    "OpenTelemetry instrumentation failed in %s; the call goes on untraced "
                    "(logged once; later failures at DEBUG)",
                    hook.__name__,
                    exc_info=True,
                )

        return contained

    # ------------------------------------------------------------------ breakers

    def on_circuit_change(self, change: CircuitChange) -> None:
        """A breaker changed state: count it, and note it on the span current then (if any)."""
        attributes = {
            "server.address": change.server_url,
            "gen_ai.request.model": change.model or "",
            "atoma.circuit.state": change.new,
        }
        self.circuit_changes.add(1, attributes)
        span = trace.get_current_span()
        if span.is_recording():
            span.add_event("atoma.circuit", {**attributes, "atoma.circuit.previous_state": change.old})

    # ------------------------------------------------------------------ call-level

    def on_call_start(self, info: CallInfo) -> None:
        """A GenAI operation starts: open its CLIENT span (a child of the caller's current span)."""
        operation = OPERATIONS.get(info.operation_id)
        if operation is None:
            return  # not a GenAI operation: no span; its requests still carry the caller's trace
        name, streamed = operation
        request = info.request
        model = getattr(request, "model", "")
        shared: dict[str, Any] = {
            "gen_ai.operation.name": name,
            "gen_ai.provider.name": PROVIDER,
            "gen_ai.request.model": model,
            **server_attributes(info.url),
        }
        attributes = {**shared, **request_attributes(request)}
        if streamed:
            attributes["gen_ai.request.stream"] = True
        span = self.tracer.start_span(f"{name} {model}", kind=SpanKind.CLIENT, attributes=attributes)
        info.data[self] = _Call(span, shared)  # first: whatever fails next, the span still ends
        if self.capture_content and span.is_recording():
            messages = input_messages(request)
            if messages is not None:
                span.set_attribute("gen_ai.input.messages", messages)

    def on_call_end(self, info: CallInfo) -> None:
        """The outcome: response attributes, status, metrics; then the span ends."""
        call = info.data.pop(self, None)
        if call is None:
            return
        try:
            self._report(call, info)
        finally:
            call.span.end()

    def _report(self, call: _Call, info: CallInfo) -> None:
        span, value, error = call.span, info.value, info.error
        first_chunk = None
        if isinstance(value, EventStream):
            response, usage = value.partial, value.usage
            first_chunk = value.metrics.time_to_first_token
        else:
            response, usage = value, getattr(value, "usage", None)
        attributes = response_attributes(response, usage)
        measured = dict(call.metric_attributes)
        if "gen_ai.response.model" in attributes:
            measured["gen_ai.response.model"] = attributes["gen_ai.response.model"]
        if error is not None:
            error_type = type(error).__qualname__
            attributes["error.type"] = measured["error.type"] = error_type
            description = describe(error) if isinstance(error, AtomaError) else error_type
            span.set_status(Status(StatusCode.ERROR, description))
        if first_chunk is not None:
            attributes["gen_ai.response.time_to_first_chunk"] = first_chunk
            self.first_chunk.record(first_chunk, measured)
        if self.capture_content and span.is_recording():
            messages = output_messages(response)
            if messages is not None:
                attributes["gen_ai.output.messages"] = messages
        span.set_attributes(attributes)
        self.duration.record(info.elapsed, measured)
        if "gen_ai.usage.input_tokens" in attributes:
            self.tokens.record(
                attributes["gen_ai.usage.input_tokens"], {**measured, "gen_ai.token.type": "input"}
            )
        if "gen_ai.usage.output_tokens" in attributes:
            self.tokens.record(
                attributes["gen_ai.usage.output_tokens"], {**measured, "gen_ai.token.type": "output"}
            )

    # ------------------------------------------------------------------ per attempt

    def before_request(self, context: HookContext) -> None:
        """Put the span's trace context (W3C `traceparent`, `tracestate`) on this attempt."""
        call = context.call.data.get(self) if context.call is not None else None
        carrier = context.request_headers
        if call is None:
            inject(carrier)  # the caller's current span, if any
        else:
            inject(carrier, context=trace.set_span_in_context(call.span))

    def after_attempt(self, context: HookContext) -> None:
        """One `atoma.attempt` event per attempt: its number, status and error, if any."""
        call = context.call.data.get(self) if context.call is not None else None
        if call is None:
            return
        attributes: dict[str, Any] = {"atoma.attempt": context.attempt}
        if context.status is not None:
            attributes["http.response.status_code"] = context.status
        if context.error is not None:
            attributes["error.type"] = type(context.error).__qualname__
        call.span.add_event("atoma.attempt", attributes)
