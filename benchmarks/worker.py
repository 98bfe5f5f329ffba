"""One client, one or more jobs, in this fresh process: for each job warm up, measure, print one
JSON line.

    python -m benchmarks.worker CLIENT URL JOB [JOB ...]      (each JOB a `plan.Job` as JSON)
    python -m benchmarks.worker --slices K CLIENT URL JOB     (one job in K turns, see below)

CPU is `time.process_time()` (user + sys of this process) around the workload only: process
start-up, imports, client set-up and one warm-up call are excluded (a burst times the set-up and
close of its fresh clients: that is what it measures; the warm one stays idle meanwhile). Standard library only here,
so the same file runs in the atoma-sdk venv.

With `--slices K` the job runs in `Job.parts(K)` turns: the worker says `ready` once warm, then
runs one part per `go` line on stdin and says `done`, and prints its record after the last. The
runner alternates the clients' workers turn by turn (run.run_interleaved); CPU and wall time are
summed over the turns.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import importlib
import json
import resource
import sys
import time
from typing import Any, Awaitable, Callable

from . import workloads as w
from .clients import MODULES
from .plan import Job

SMALL = "bench:small"
WARM_STREAM = "bench:stream:8:1:0"
STREAMING = {"stream", "open", "ttft"}  # kinds warmed up with a stream, not a request


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def connections(job: Job) -> int:
    if job.kind == "open":
        return job.count + 16
    return job.concurrency if job.kind == "burst" else max(100, job.concurrency)


async def workload(
    client: Any, connect: Callable[[int], Awaitable[Any]], job: Job, url: str, totals: w.Totals
) -> dict[str, Any]:
    """Run `job` on `client` (a burst: on fresh ones from `connect`); whatever the workload
    measures beyond CPU and wall time."""
    if job.kind == "seq":
        await w.sequential(client, job.model, job.count, totals)
    elif job.kind == "conc":
        await w.concurrent(client, job.model, job.count, job.concurrency, totals)
    elif job.kind == "burst":
        await w.bursts(connect, job.model, job.count, job.burst, job.concurrency, totals)
    elif job.kind == "stream":
        await w.streams(client, job.model, job.count, totals)
    elif job.kind == "ttft":
        return {"samples": await w.first_tokens(client, job.model, job.count, totals)}
    elif job.kind == "open":
        return await w.open_streams(client, url, job.model, job.count, job.hold_at, totals)
    else:
        raise SystemExit(f"unknown kind of job {job.kind!r}")
    return {}


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def measure(name: str, url: str, job: Job, slices: int = 1) -> dict[str, Any]:
    connect = functools.partial(importlib.import_module(MODULES[name]).connect, url, name)
    client = await connect(connections(job))
    totals = w.Totals()
    parts = job.parts(slices) if slices > 1 else [job]
    cpu = wall = 0.0
    extra: dict[str, Any] = {}
    samples: list[float] = []  # time to first token, over all parts
    try:
        if job.kind in STREAMING:
            await client.stream(WARM_STREAM)
        else:
            await client.complete(SMALL)
        gc.collect()
        if slices > 1:
            say("ready")
        for part in parts:
            if slices > 1 and sys.stdin.readline().strip() != "go":
                raise SystemExit("the runner went away")
            wall0, cpu0 = time.perf_counter(), time.process_time()
            found = await workload(client, connect, part, url, totals)
            cpu, wall = cpu + time.process_time() - cpu0, wall + time.perf_counter() - wall0
            samples += found.pop("samples", [])
            extra.update(found)
            if slices > 1:
                say("done")
    finally:
        await client.aclose()
    return {
        "client": name,
        "workload": job.workload,
        "kind": job.kind,
        "count": job.count,
        "cpu": cpu,
        "wall": wall,
        "rss": w.rss(),
        "peak_rss": peak_rss(),
        "requests": totals.requests,
        "chunks": totals.chunks,
        "chars": totals.chars,
        "tokens": totals.tokens,
        **extra,
        **(w.ttft_figures(samples) if samples else {}),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=1, help="run the one job in this many turns")
    parser.add_argument("client", choices=sorted(MODULES))
    parser.add_argument("url")
    parser.add_argument("jobs", nargs="+", type=lambda text: Job(**json.loads(text)))
    args = parser.parse_args(argv)
    if args.slices > 1 and len(args.jobs) > 1:
        parser.error("--slices takes one job")
    for job in args.jobs:
        say(json.dumps(asyncio.run(measure(args.client, args.url, job, args.slices))))


if __name__ == "__main__":
    main()
