"""Time to first token, phase by phase, client and server: where each microsecond of a stream's
first event goes, for the bare loop, this SDK plain and confidential (`bench:stream:8:1:0`).

    python -m benchmarks.ttft_phases [--count 300] [--rounds 5] [--perf DIR]

The bench server runs as its own process (`--phases`: it notes when each step of a request ended);
this process runs the clients of benchmarks/clients, one stream after another, turn by turn
(`--count` streams per client per round), and notes its own steps by wrapping a few functions of
the SDK and aiohttp (a wrapper costs ~0.1 us a call). Both sides read `time.perf_counter()`, the
system's monotonic clock, so marks taken in two processes line up. Each phase is the median over
every stream of its own duration (so the phases need not add up to the median total).

With `--perf DIR`, a second pass runs only the confidential client while `perf record -e cpu-clock
-g` samples the server and this process (DIR/server.data, DIR/client.data; `perf report -i ...`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

from .server_process import ServerProcess, pin

MODEL = "bench:stream:8:1:0"
CLIENTS = ("bare", "atoma", "atoma-confidential")
ROOT = Path(__file__).resolve().parent.parent

# This stream's client-side marks: name -> perf_counter() (the first of each name wins).
marks: dict[str, float] = {}
now = time.perf_counter


def _note(name: str) -> None:
    if name not in marks:
        marks[name] = now()


def instrument() -> None:
    """Wrap the steps of the client's way to the first token that this process can see."""
    import asyncio.selector_events as selector_events

    import aiohttp.client_proto as client_proto

    import atoma_core._crypto as crypto
    import atoma_core._stream as stream_module

    seal_body = crypto.seal_body

    def timed_seal_body(*args: Any, **kwargs: Any) -> Any:
        _note("seal0")
        cpu = time.process_time()
        try:
            return seal_body(*args, **kwargs)
        finally:
            marks["seal_cpu"] = time.process_time() - cpu
            _note("seal1")

    crypto.seal_body = timed_seal_body  # before the first call: `_confidential._sealing` caches it

    transport: Any = getattr(selector_events, "_SelectorSocketTransport")  # noqa: B009 (private)
    write = transport.write

    def timed_write(self: Any, data: Any) -> None:
        if "recv" not in marks:
            marks["sent"] = now()  # the last write before the answer's first bytes
        write(self, data)

    transport.write = timed_write

    data_received = client_proto.ResponseHandler.data_received

    def timed_data_received(self: Any, data: bytes) -> None:
        _note("recv")
        if "dec0" not in marks and "first" not in marks:
            marks["recv_event"] = now()  # the last bytes in before the first event is decoded
        data_received(self, data)

    client_proto.ResponseHandler.data_received = timed_data_received  # type: ignore[method-assign]

    stream_decoder = crypto.ResponseKey.stream_decoder

    def timed_stream_decoder(self: Any, decode: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
        inner = stream_decoder(self, decode)

        def decode_event(data: bytes) -> Any:
            _note("open0")
            try:
                return inner(data)
            finally:
                _note("open1")

        decode_event.release = inner.release  # type: ignore[attr-defined]
        return decode_event

    crypto.ResponseKey.stream_decoder = timed_stream_decoder  # type: ignore[method-assign]

    class TimedChunkDecoder:
        """`chat_chunk_decoder` with its first decode of a stream timed (plain, or the plaintext)."""

        def __init__(self, decoder: Any) -> None:
            self._decode = decoder.decode

        def decode(self, data: bytes) -> Any:
            _note("dec0")
            try:
                return self._decode(data)
            finally:
                _note("dec1")

    stream_module.chat_chunk_decoder = TimedChunkDecoder(stream_module.chat_chunk_decoder)  # type: ignore[assignment]


async def connect(url: str, name: str) -> Any:
    from .clients import MODULES

    module = __import__(MODULES[name], fromlist=["connect"])
    return await module.connect(url, name, 8)


async def one_stream(client: Any) -> dict[str, float]:
    """One stream, its client marks (and CPU from the call to the first chunk)."""
    marks.clear()
    cpu = [0.0]

    async def first() -> None:
        _note("first")
        cpu[0] = time.process_time() - cpu0

    cpu0 = time.process_time()
    marks["call"] = now()
    await client.stream(MODEL, first, 1)
    return {**marks, "cpu": cpu[0]}


def server_marks(url: str) -> list[dict[str, float]]:
    with urllib.request.urlopen(url + "/bench/phases", timeout=30) as response:
        taken = json.loads(response.read())
    out = []
    for request in taken:
        seen: dict[str, float] = {}
        for name, value in request:
            seen.setdefault("s_" + name, value)
        out.append(seen)
    return out


# (label, start mark, end mark): each row is the median of end - start over the streams that have both.
PHASES = [
    ("client: call -> sealing starts", "call", "seal0"),
    ("client: sealing (seal_body)", "seal0", "seal1"),
    ("client: sealed -> last request write", "seal1", "sent"),
    ("client: call -> last request write", "call", "sent"),
    ("loopback + server reads the head", "sent", "s_start"),
    ("server: head -> body read", "s_start", "s_read"),
    ("server: open the request", "s_read", "s_opened"),
    ("server: opened -> headers sent", "s_opened", "s_headers"),
    ("server: read -> headers sent", "s_read", "s_headers"),
    ("server: first write sealed", "s_headers", "s_sealed"),
    ("server: opened -> first write sealed", "s_opened", "s_sealed"),
    ("server: first write sealed -> sent", "s_sealed", "s_written"),
    ("server: headers -> first write sent", "s_headers", "s_written"),
    ("server: start -> first write sent", "s_start", "s_written"),
    ("server headers -> client's first bytes", "s_headers", "recv"),
    ("server first write sent -> client reads it", "s_written", "recv_event"),
    ("client: read -> event opened", "recv_event", "open0"),
    ("client: open the first event (incl. decode)", "open0", "open1"),
    ("client:   of which the chunk decode", "dec0", "dec1"),
    ("client: read -> chunk decoded", "recv_event", "dec1"),
    ("client: event opened -> first chunk out", "open1", "first"),
    ("client: chunk decoded -> first chunk out", "dec1", "first"),
    ("TOTAL: call -> first chunk (wall)", "call", "first"),
]


def table(samples: dict[str, list[dict[str, float]]]) -> str:
    names = list(samples)
    lines = ["| phase | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for label, start, end in PHASES:
        cells = []
        for name in names:
            spans = [(s[end] - s[start]) * 1e6 for s in samples[name] if start in s and end in s]
            cells.append(f"{statistics.median(spans):.0f}" if spans else "")
        if any(cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for label, key in (("client CPU: call -> first chunk", "cpu"), ("client CPU: sealing", "seal_cpu")):
        cells = [_median(samples[name], key) for name in names]
        if any(cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    cells = [_median(samples[name], "s_cpu_used") for name in names]
    lines.append("| server CPU: start -> first write sent | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _median(rows: list[dict[str, float]], key: str) -> str:
    values = [row[key] * 1e6 for row in rows if key in row]
    return f"{statistics.median(values):.0f}" if values else ""


async def measure(
    url: str, names: tuple[str, ...], count: int, rounds: int
) -> dict[str, list[dict[str, float]]]:
    clients = {name: await connect(url, name) for name in names}
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    try:
        for client in clients.values():  # warm: the lock, the connection, the code paths
            for _ in range(20):
                await client.stream(MODEL)
        server_marks(url)
        for _ in range(rounds):
            for name, client in clients.items():
                got = [await one_stream(client) for _ in range(count)]
                for mine, theirs in zip(got, server_marks(url), strict=True):
                    samples[name].append({**mine, **theirs})
    finally:
        for client in clients.values():
            await client.aclose()
    return samples


def perf_pass(url: str, server_pid: int, out: Path, count: int) -> None:
    """Sample the server and this process with `perf record -e cpu-clock -g` over `count`
    confidential streams."""
    out.mkdir(parents=True, exist_ok=True)
    recorders = [
        subprocess.Popen(
            [
                "perf",
                "record",
                "-q",
                "-e",
                "cpu-clock",
                "-F",
                "4999",
                "-g",
                "-p",
                str(pid),
                "-o",
                str(out / f"{who}.data"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for who, pid in (("server", server_pid), ("client", os.getpid()))
    ]
    time.sleep(1.0)  # perf attached
    try:
        asyncio.run(measure(url, ("atoma-confidential",), count, 1))
    finally:
        for recorder in recorders:
            recorder.send_signal(signal.SIGINT)
            recorder.wait(timeout=60)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300, help="streams per client per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--perf", type=Path, help="also sample server and client with perf, into DIR")
    args = parser.parse_args(argv)
    instrument()
    pin(os.getpid(), 0)
    server = ServerProcess(sys.executable, ROOT, cpu=1)
    server.argv.append("--phases")
    with server:
        samples = asyncio.run(measure(server.url, tuple(args.clients.split(",")), args.count, args.rounds))
        print(
            f"{MODEL}, median us over {args.count * args.rounds} streams per client "
            f"(client on CPU 0, server on CPU 1)\n"
        )
        print(table(samples))
        if args.perf is not None:
            assert server.proc is not None
            perf_pass(server.url, server.proc.pid, args.perf, args.count * args.rounds)
            print(f"\nperf data: {args.perf}/server.data, {args.perf}/client.data")


if __name__ == "__main__":
    main()
