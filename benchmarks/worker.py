"""One client, one workload, in this fresh process: warm up, measure, print one JSON line.

    python -m benchmarks.worker CLIENT WORKLOAD URL COUNT [--param P] [--concurrency C]

CPU is `time.process_time()` (user + sys of this process) around the workload only: process
start-up, imports, client set-up and one warm-up call are excluded. Standard library only here,
so the same file runs in the atoma-sdk venv.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import os
import resource
import sys
import time
from typing import Any

from .clients import MODULES

SMALL = "bench:small"
LARGE = "bench:large"
WARM_STREAM = "bench:stream:8:1:0"
_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    """Resident set size now, in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Totals:
    """What the client decoded, summed over the workload, for the cross-client check."""

    def __init__(self) -> None:
        self.requests = self.chunks = self.chars = self.tokens = 0

    def add_body(self, result: tuple[int, int]) -> None:
        self.requests += 1
        self.chars += result[0]
        self.tokens += result[1]

    def add_stream(self, result: tuple[int, int, int]) -> None:
        self.requests += 1
        self.chunks += result[0]
        self.chars += result[1]
        self.tokens += result[2]


async def sequential(client: Any, model: str, count: int, totals: Totals) -> None:
    for _ in range(count):
        totals.add_body(await client.complete(model))


async def concurrent(client: Any, model: str, count: int, concurrency: int, totals: Totals) -> None:
    todo = iter(range(count))

    async def lane() -> None:
        for _ in todo:  # the lanes share one iterator: each request is taken once
            totals.add_body(await client.complete(model))

    await asyncio.gather(*(lane() for _ in range(concurrency)))


async def streams(client: Any, model: str, count: int, totals: Totals) -> None:
    for _ in range(count):
        totals.add_stream(await client.stream(model))


async def release(url: str, group: str) -> None:
    """`GET /bench/release/<group>` with asyncio streams alone, so no client library is involved."""
    host, port = url.rsplit("//", 1)[1].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET /bench/release/{group} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    await reader.read()
    writer.close()
    await writer.wait_closed()


async def open_streams(client: Any, url: str, events: int, count: int, totals: Totals) -> dict[str, Any]:
    """`count` streams open at once, each holding after its first chunk; RSS is read when all are
    open, then the server releases them and each is read to its end."""
    group = str(os.getpid())
    model = f"bench:hold:{group}:{events}"
    opened = 0
    all_open = asyncio.Event()
    go = asyncio.Event()

    async def hold() -> None:
        nonlocal opened
        opened += 1
        if opened == count:
            all_open.set()
        await go.wait()

    async def one() -> None:
        totals.add_stream(await client.stream(model, hold))

    gc.collect()
    base = rss()
    started = time.perf_counter()
    tasks = [asyncio.ensure_future(one()) for _ in range(count)]
    waiter = asyncio.ensure_future(all_open.wait())
    await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    if not all_open.is_set():  # a stream failed before all were open
        waiter.cancel()
        await asyncio.gather(*tasks)
    open_s = time.perf_counter() - started
    at_open = rss()
    await release(url, group)
    go.set()
    await asyncio.gather(*tasks)
    return {"rss_base": base, "rss_open": at_open, "open_s": open_s}


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    module = importlib.import_module(MODULES[args.client])
    connections = max(100, args.count + 16 if args.workload == "open" else args.concurrency)
    client = await module.connect(args.url, args.client, connections)
    totals = Totals()
    extra: dict[str, Any] = {}
    try:
        if args.workload.startswith("stream"):
            await client.stream(WARM_STREAM)
        else:
            await client.complete(SMALL)
        gc.collect()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        if args.workload == "seq":
            await sequential(client, SMALL, args.count, totals)
        elif args.workload == "conc":
            await concurrent(client, SMALL, args.count, args.concurrency, totals)
        elif args.workload == "large":
            await sequential(client, LARGE, args.count, totals)
        elif args.workload.startswith("stream"):
            await streams(client, args.param, args.count, totals)
        elif args.workload == "open":
            extra = await open_streams(client, args.url, int(args.param), args.count, totals)
        else:
            raise SystemExit(f"unknown workload {args.workload!r}")
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    finally:
        await client.aclose()
    return {
        "client": args.client,
        "workload": args.workload,
        "count": args.count,
        "cpu": cpu,
        "wall": wall,
        "rss": rss(),
        "peak_rss": peak_rss(),
        "requests": totals.requests,
        "chunks": totals.chunks,
        "chars": totals.chars,
        "tokens": totals.tokens,
        **extra,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("client", choices=sorted(MODULES))
    parser.add_argument("workload", choices=["seq", "conc", "large", "stream", "stream-batched", "open"])
    parser.add_argument("url")
    parser.add_argument("count", type=int)
    parser.add_argument("--param", default="", help="stream model, or events per held stream")
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args(argv)
    result = asyncio.run(measure(args))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
