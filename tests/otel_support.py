"""What the OpenTelemetry tests share: SDK providers that keep everything in memory, their
fixtures, and helpers to read spans, metrics and headers back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext

from atoma_core import AtomaCore
from atoma_core.otel import Instrumentation, instrument

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


def port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def traceparent(context: SpanContext) -> str:
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def everything(telemetry: Telemetry) -> str:
    """All that was recorded, spans and metrics, as one string to search."""
    parts = []
    for span in telemetry.finished():
        parts += [span.name, str(dict(span.attributes or {})), str(span.status.description)]
        parts += [f"{e.name} {dict(e.attributes or {})}" for e in span.events]
    data = telemetry.reader.get_metrics_data()
    parts.append(data.to_json() if data else "")
    return "\n".join(parts)
