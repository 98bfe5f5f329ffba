"""Time to first token, phase by phase, client and server: where each microsecond of a stream's
first event goes, for the bare loop, this SDK plain and confidential (`bench:stream:8:1:0`).

    python -m benchmarks.ttft_phases [--count 300] [--rounds 5] [--perf DIR]
    python -m benchmarks.ttft_phases --server-root OLD_TREE --server-root NEW_TREE    (an A/B)

The bench server runs as its own process (`--phases`: it notes when each step of a request ended);
this process runs the clients of benchmarks/clients, one stream after another, turn by turn
(`--count` streams per client per round), and notes its own steps by wrapping a few functions of
the SDK and aiohttp (a wrapper costs ~0.1 us a call). Both sides read `time.perf_counter()`, the
system's monotonic clock, so marks taken in two processes line up. Each phase is the median over
every stream of its own duration (so the phases need not add up to the median total).

With `--perf DIR`, a second pass runs only the confidential client while `perf record -e cpu-clock
-g` samples the server and this process (DIR/server.data, DIR/client.data; `perf report -i ...`).
Python 3.12+ with `-X perf` (or PYTHONPERFSUPPORT=1, which the server inherits) names Python's
frames too, but only a libpython built with frame pointers lets perf unwind through them (pyenv's
3.12.1 is not: samples end in `[unknown]`); see benchmarks/profiles/confidential-ttft.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import re
import shutil
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


# What each mark means: the client's (this process) and the server's (`s_`).
MARKS = {
    "call": "client: the call",
    "seal0": "client: sealing starts",
    "seal1": "client: sealed",
    "sent": "client: last request write",
    "s_start": "server: handler starts",
    "s_read": "server: body read",
    "s_opened": "server: request opened",
    "s_sealed": "server: first write sealed",
    "s_headers": "server: headers sent",
    "s_written": "server: first write sent",
    "recv": "client: first bytes in",
    "recv_event": "client: first event's bytes in",
    "open0": "client: opening the event",
    "dec0": "client: decoding the chunk",
    "dec1": "client: chunk decoded",
    "open1": "client: event opened",
    "first": "client: first chunk out",
}
# Spans across the steps: (label, start mark, end mark).
SPANS = [
    ("client, before the request is written", "call", "sent"),
    ("server, handler start -> first write sent", "s_start", "s_written"),
    ("client, first event's bytes in -> chunk out", "recv_event", "first"),
    ("TOTAL: call -> first chunk", "call", "first"),
]


def steps(sample: dict[str, float]) -> list[tuple[str, float]]:
    """The marks of one stream in the order they happened, as (from -> to, us) steps."""
    timeline = sorted((sample[name], name) for name in MARKS if name in sample)
    return [(f"{a} -> {b}", (tb - ta) * 1e6) for (ta, a), (tb, b) in itertools.pairwise(timeline)]


def table(samples: dict[str, list[dict[str, float]]]) -> str:
    """Each client's steps in the order they happened (the median of each, over the streams
    where that step occurred in at least half of them), then spans and CPU."""
    names = list(samples)
    per_client = {}
    order: list[str] = []
    for name in names:
        found: dict[str, list[float]] = {}
        for sample in samples[name]:
            for step, us in steps(sample):
                found.setdefault(step, []).append(us)
        per_client[name] = {k: v for k, v in found.items() if len(v) * 2 >= len(samples[name])}
        order += [k for k in per_client[name] if k not in order]
    rank = {mark: i for i, mark in enumerate(MARKS)}
    order.sort(key=lambda step: [rank[mark] for mark in step.split(" -> ")])
    lines = ["| step (median us) | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for step in order:
        cells = [
            f"{statistics.median(per_client[n][step]):.0f}" if step in per_client[n] else "" for n in names
        ]
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    for label, start, end in SPANS:
        cells = []
        for name in names:
            spans = [(s[end] - s[start]) * 1e6 for s in samples[name] if start in s and end in s]
            cells.append(f"{statistics.median(spans):.0f}" if spans else "")
        lines.append(f"| **{label}** | " + " | ".join(cells) + " |")
    for label, key in (
        ("client CPU: call -> first chunk", "cpu"),
        ("client CPU: sealing", "seal_cpu"),
        ("server CPU: handler start -> first write sent", "s_cpu_used"),
    ):
        lines.append(f"| {label} | " + " | ".join(_median(samples[name], key) for name in names) + " |")
    return "\n".join(lines)


def _median(rows: list[dict[str, float]], key: str) -> str:
    values = [row[key] * 1e6 for row in rows if key in row]
    return f"{statistics.median(values):.0f}" if values else ""


async def measure(
    urls: dict[str, str], names: tuple[str, ...], count: int, rounds: int
) -> dict[str, list[dict[str, float]]]:
    """`count` streams of each client on each server (`urls`: label -> URL), turn by turn."""
    tag = len(urls) > 1
    clients = {(name, label): await connect(url, name) for label, url in urls.items() for name in names}
    samples: dict[str, list[dict[str, float]]] = {
        f"{name}@{label}" if tag else name: [] for name, label in clients
    }
    try:
        for client in clients.values():  # warm: the lock, the connection, the code paths
            for _ in range(20):
                await client.stream(MODEL)
        for url in urls.values():
            server_marks(url)
        for _ in range(rounds):
            for (name, label), client in clients.items():
                got = [await one_stream(client) for _ in range(count)]
                for mine, theirs in zip(got, server_marks(urls[label]), strict=True):
                    samples[f"{name}@{label}" if tag else name].append({**mine, **theirs})
    finally:
        for client in clients.values():
            await client.aclose()
    return samples


def perf_pass(url: str, server_pid: int, out: Path, count: int, call_graph: str) -> None:
    """Sample the server and this process with `perf record -e cpu-clock` (call graphs: `fp`,
    or `dwarf` to see Python's frames under `-X perf`) over `count` confidential streams."""
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
        asyncio.run(measure({"": url}, ("atoma-confidential",), count, 1))
    finally:
        for recorder in recorders:
            recorder.send_signal(signal.SIGINT)
            recorder.wait(timeout=60)


# Where perf's samples fall, by shared object and symbol (first match wins).
CATEGORIES = [
    (
        "X25519 scalar multiplication (OpenSSL: x25519_fe64_* asm, fe_*/ge_* for a key pair)",
        re.compile(r"x25519|\bfe_|\bge_|fe51|\bcmov\b"),
    ),
    (
        "other cryptography/OpenSSL: AES-GCM, HKDF, SHA-256, key objects, provider look-ups",
        re.compile(r"_rust\.abi3|libcrypto|libssl"),
    ),
    ("CPython interpreter (libpython)", re.compile(r"libpython")),
    ("aiohttp's C parts (llhttp parser, writer)", re.compile(r"_http_parser|_http_writer|_websocket")),
    ("multidict / yarl / propcache / frozenlist", re.compile(r"multidict|yarl|propcache|frozenlist")),
    ("msgspec", re.compile(r"msgspec|/_core\.cpython|^_core\.cpython")),
    ("stdlib C modules (_blake2, binascii, _json, _asyncio, select, ...)", re.compile(r"\.cpython-3")),
    ("libc (malloc, memcpy, ...)", re.compile(r"libc\.so|libm\.so|ld-linux")),
    ("kernel (syscalls, loopback TCP, scheduling)", re.compile(r"kernel")),
]


def perf_summary(data: Path, streams: int) -> str:
    """CPU per stream by category from a `perf record -e cpu-clock` file (its event count is ns)."""
    report = subprocess.run(
        [
            "perf",
            "report",
            "-i",
            str(data),
            "--no-children",
            "--sort",
            "dso,sym",
            "--stdio",
            "-g",
            "none",
            "--percent-limit",
            "0",
            "-q",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    header = subprocess.run(
        ["perf", "report", "-i", str(data), "--stdio", "-g", "none", "--percent-limit", "100"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = re.search(r"Event count \(approx\.\): (\d+)", header)
    total_us = int(found.group(1)) / 1e3 if found else 0.0
    shares: dict[str, float] = {}
    for line in report.splitlines():
        parts = line.split(None, 2)
        if len(parts) < 3 or not parts[0].endswith("%"):
            continue
        share, where = float(parts[0][:-1]), parts[1] + " " + parts[2]
        label = next((label for label, pattern in CATEGORIES if pattern.search(where)), "other")
        shares[label] = shares.get(label, 0.0) + share
    lines = [
        f"{data.name}: {total_us / streams:.0f} us CPU per stream sampled ({streams} streams)",
        "",
        "| where | share | us per stream |",
        "|---|---:|---:|",
    ]
    for label, share in sorted(shares.items(), key=lambda item: -item[1]):
        lines.append(f"| {label} | {share:.1f} % | {share * total_us / 100 / streams:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300, help="streams per client per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument(
        "--server-root",
        action="append",
        type=Path,
        help="run the bench server of this tree (repeat it for an A/B: the clients take turns on each)",
    )
    parser.add_argument("--perf", type=Path, help="also sample server and client with perf, into DIR")
    parser.add_argument("--call-graph", default="fp", help="perf's: fp, or dwarf (with python -X perf)")
    args = parser.parse_args(argv)
    instrument()
    pin(os.getpid(), 0)
    roots = args.server_root or [ROOT]
    with contextlib.ExitStack() as stack:
        servers = {}
        for root in roots:
            server = ServerProcess(sys.executable, root.resolve(), cpu=1)
            server.argv.append("--phases")
            servers[root.name if len(roots) > 1 else ""] = stack.enter_context(server)
        urls = {label: server.url for label, server in servers.items()}
        samples = asyncio.run(measure(urls, tuple(args.clients.split(",")), args.count, args.rounds))
        print(
            f"{MODEL}, median us over {args.count * args.rounds} streams per client "
            f"(client on CPU 0, server on CPU 1)\n"
        )
        print(table(samples))
        print("\nmarks: " + "; ".join(f"{k} = {v}" for k, v in MARKS.items()))
        if args.perf is not None and shutil.which("perf") is None:
            print("\nno perf sampling: perf is not installed (Debian: apt-get install linux-perf)")
        elif args.perf is not None:
            server = next(iter(servers.values()))
            assert server.proc is not None
            perf_pass(server.url, server.proc.pid, args.perf, args.count * args.rounds, args.call_graph)
            print(f"\nperf data: {args.perf}/server.data, {args.perf}/client.data\n")
            for who in ("server", "client"):
                print(perf_summary(args.perf / f"{who}.data", args.count * args.rounds) + "\n")


if __name__ == "__main__":
    main()
