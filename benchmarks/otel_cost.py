"""What tracing costs: client CPU per request and per stream chunk with tracing off, instrumented
over OpenTelemetry's API alone (no SDK configured: non-recording spans), and instrumented with the
SDK recording every span (synchronous processor, an exporter that drops them) and every metric.

    python -m benchmarks.otel_cost [--rounds 5] [--requests 1000] [--streams 10] [--chunks 2000]

Runs against the bench server (`benchmarks.server`, its own process). The three modes alternate
within each round in this one process; each figure is a median over rounds. The per-chunk figure
is the stream workload's extra CPU over "off", less the per-request extra of its streams, divided
by its chunks. Needs opentelemetry-sdk (the dev extra).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from atoma_core import AtomaCore
from atoma_core.otel import instrument
from atoma_funcs import chat_create, chat_create_stream

from .clients import MESSAGES, TOKEN
from .server_process import ServerProcess, pin

ROOT = Path(__file__).resolve().parent.parent
MODES = ("off", "api", "sdk")


class _Drop(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _sdk_providers() -> tuple[TracerProvider, MeterProvider]:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(_Drop()))
    return tracer_provider, MeterProvider(metric_readers=[InMemoryMetricReader()])


async def _requests(core: AtomaCore, count: int) -> None:
    for _ in range(count):
        (await chat_create(core, {"model": "bench:small", "messages": MESSAGES})).unwrap()


async def _streams(core: AtomaCore, count: int, chunks: int) -> None:
    for _ in range(count):
        res = await chat_create_stream(core, {"model": f"bench:stream:{chunks}:1:0", "messages": MESSAGES})
        async with res.unwrap() as stream:
            async for _ in stream:
                pass


async def _cpu(work: Any) -> float:
    gc.collect()
    started = time.process_time()
    await work
    return time.process_time() - started


async def one_mode(url: str, mode: str, args: argparse.Namespace) -> tuple[float, float]:
    """CPU seconds of the request workload and of the stream workload, in one mode."""
    core = AtomaCore(TOKEN, url)
    instrumentation = None
    if mode == "api":
        instrumentation = instrument(core)  # the global providers: the API's no-op ones
    elif mode == "sdk":
        tracer_provider, meter_provider = _sdk_providers()
        instrumentation = instrument(core, tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        await _requests(core, 10)  # warm-up: connection, first-call imports
        await _streams(core, 1, 8)
        seq = await _cpu(_requests(core, args.requests))
        streamed = await _cpu(_streams(core, args.streams, args.chunks))
    finally:
        if instrumentation is not None:
            instrumentation.uninstrument()
        await core.close()
    return seq, streamed


async def main(args: argparse.Namespace) -> None:
    pin(os.getpid(), 0)
    with ServerProcess(sys.executable, ROOT, (os.cpu_count() or 1) - 1) as server:
        rows: dict[str, list[tuple[float, float]]] = {mode: [] for mode in MODES}
        for _ in range(args.rounds):
            for mode in MODES:
                rows[mode].append(await one_mode(server.url, mode, args))
    chunks = args.streams * args.chunks  # a bench stream of N events is N chunks, usage included
    off_req = statistics.median(seq for seq, _ in rows["off"]) / args.requests
    off_stream = statistics.median(s for _, s in rows["off"])
    print(f"rounds={args.rounds} requests={args.requests} streams={args.streams}x{args.chunks} chunks")
    print("mode  CPU us/request  (+ over off)   CPU us/chunk  (+ over off, per-request part removed)")
    for mode in MODES:
        per_request = statistics.median(seq for seq, _ in rows[mode]) / args.requests
        stream_cpu = statistics.median(s for _, s in rows[mode])
        extra_chunk = (stream_cpu - off_stream - args.streams * (per_request - off_req)) / chunks
        print(
            f"{mode:4}  {per_request * 1e6:14.1f}  ({(per_request - off_req) * 1e6:+8.1f})"
            f"   {stream_cpu / chunks * 1e6:12.3f}  ({extra_chunk * 1e6:+.3f})"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--streams", type=int, default=10)
    parser.add_argument("--chunks", type=int, default=2000)
    asyncio.run(main(parser.parse_args()))
