"""The workloads a worker runs on one client: what is sent, in what order, and what is counted.

Standard library only, so the same file runs in the atoma-sdk venv.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import os
import statistics
import time
from typing import Any, Awaitable, Callable

__all__ = [
    "Totals",
    "bursts",
    "concurrent",
    "first_tokens",
    "open_streams",
    "rss",
    "sequential",
    "streams",
    "ttft_figures",
]

_PAGE = os.sysconf("SC_PAGE_SIZE")
_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or None)


def rss() -> int:
    """Resident set size now, in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def settled_rss() -> int:
    """RSS once garbage is collected and the C heap hands back its free pages (glibc's
    `malloc_trim`), so it counts what is held, not how high transient read buffers once rose."""
    gc.collect()
    trim = getattr(_LIBC, "malloc_trim", None)
    if trim is not None:
        trim(0)
    return rss()


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


async def bursts(
    connect: Callable[[int], Awaitable[Any]], model: str, count: int, size: int, lanes: int, totals: Totals
) -> None:
    """`count` requests, `size` at a time, each lot over `lanes` connections of a client made for
    it and closed after it: what a short-lived handler pays, set-up and close included."""
    for _ in range(count // size):
        client = await connect(lanes)
        try:
            await concurrent(client, model, size, lanes, totals)
        finally:
            await client.aclose()


async def streams(client: Any, model: str, count: int, totals: Totals) -> None:
    for _ in range(count):
        totals.add_stream(await client.stream(model))


async def first_tokens(client: Any, model: str, count: int, totals: Totals) -> list[float]:
    """`count` streams one after another, each timed (wall) from the call to its first chunk, in us."""
    first = 0.0

    async def mark() -> None:
        nonlocal first
        first = time.perf_counter()

    samples = []
    for _ in range(count):
        started = time.perf_counter()
        totals.add_stream(await client.stream(model, mark, 1))
        samples.append((first - started) * 1e6)
    return samples


def ttft_figures(samples: list[float]) -> dict[str, float]:
    """The median and the 10th and 90th percentiles of time-to-first-token samples."""
    deciles = statistics.quantiles(samples, n=10) if len(samples) > 1 else samples * 9
    return {"ttft_us": statistics.median(samples), "ttft_p10_us": deciles[0], "ttft_p90_us": deciles[-1]}


async def release(url: str, group: str) -> None:
    """`GET /bench/release/<group>` with asyncio streams alone, so no client library is involved."""
    host, port = url.rsplit("//", 1)[1].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET /bench/release/{group} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    await reader.read()
    writer.close()
    await writer.wait_closed()


async def open_streams(
    client: Any, url: str, model: str, count: int, hold_at: int, totals: Totals
) -> dict[str, Any]:
    """`count` streams open at once, each holding after chunk `hold_at` (what it accumulated so far
    stays in memory); RSS is read (settled) when all hold, then the server releases them and each
    is read to its end. `model` holds "{group}", filled with a group of this process's own."""
    group = str(os.getpid())
    model = model.format(group=group)
    holding = 0
    all_holding = asyncio.Event()
    go = asyncio.Event()

    async def hold() -> None:
        nonlocal holding
        holding += 1
        if holding == count:
            all_holding.set()
        await go.wait()

    async def one() -> None:
        totals.add_stream(await client.stream(model, hold, hold_at))

    base = settled_rss()
    started = time.perf_counter()
    tasks = [asyncio.ensure_future(one()) for _ in range(count)]
    waiter = asyncio.ensure_future(all_holding.wait())
    await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    if not all_holding.is_set():  # a stream failed before all were holding
        waiter.cancel()
        await asyncio.gather(*tasks)
    open_s = time.perf_counter() - started
    at_open = settled_rss()
    await release(url, group)
    go.set()
    await asyncio.gather(*tasks)
    return {"rss_base": base, "rss_open": at_open, "open_s": open_s}
