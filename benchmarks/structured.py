"""What structured outputs cost, against the bench server, clients alternating in ONE process
(medians of per-round ratios, as `pair.py`):

- parse: `chat_parse(T)` of a ~1 KB JSON answer vs `chat_create` + a hand-written
  `msgspec.json.decode(content, type=T)`, CPU per call (target <= 1.10x);
- snapshot: a JSON answer of 20 KB in 2,000 chunks and of 40 KB in 4,000, `chat_parse_stream`
  with `stream.snapshot` read after every chunk vs the plain `chat_create_stream` iterated, CPU
  per chunk (target <= 2x, and the same per chunk at both sizes: linear);
- for comparison, the plain stream re-parsed with jiter (partial mode) after every chunk: what
  re-parsing the whole text per chunk costs (quadratic).

    python -m benchmarks.structured [--rounds 7] [--calls 400] [--streams 4] [--per-write 10]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from typing import Any, Awaitable, Callable

import msgspec

from atoma_core import AtomaCore
from atoma_funcs import chat_create, chat_create_stream, chat_parse, chat_parse_stream

from .clients import MESSAGES, TOKEN
from .payloads import json_document
from .server_process import median_ratio, run_against


class Item(msgspec.Struct):
    id: int
    name: str
    note: str
    tags: list[str]
    score: float
    active: bool


class Document(msgspec.Struct):
    items: list[Item]


def _request(model: str) -> dict[str, Any]:
    return {"model": model, "messages": MESSAGES}


async def parse_call(core: AtomaCore, model: str) -> int:
    (await chat_parse(core, _request(model), Document)).unwrap()
    return 1


async def create_and_decode(core: AtomaCore, model: str) -> int:
    response = (await chat_create(core, _request(model))).unwrap()
    msgspec.json.decode(response.choices[0].message.content or "", type=Document)
    return 1


async def plain_stream(core: AtomaCore, model: str) -> int:
    chunks = 0
    async with (await chat_create_stream(core, _request(model))).unwrap() as stream:
        async for _ in stream:
            chunks += 1
    return chunks


async def snapshot_stream(core: AtomaCore, model: str) -> int:
    chunks = 0
    async with (await chat_parse_stream(core, _request(model), Document)).unwrap() as stream:
        async for _ in stream:
            stream.snapshot  # noqa: B018 (the read is what is measured)
            chunks += 1
    return chunks


async def jiter_stream(core: AtomaCore, model: str) -> int:
    import jiter

    chunks = 0
    parts: list[str] = []
    async with (await chat_create_stream(core, _request(model))).unwrap() as stream:
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
            if parts:
                jiter.from_json("".join(parts).encode(), partial_mode="trailing-strings")
            chunks += 1
    return chunks


Work = Callable[[AtomaCore, str], Awaitable[int]]


async def _per_unit(core: AtomaCore, work: Work, model: str, count: int) -> float:
    """CPU microseconds per unit (a call, or a chunk)."""
    gc.collect()
    units = 0
    started = time.process_time()
    for _ in range(count):
        units += await work(core, model)
    return (time.process_time() - started) / units * 1e6


async def _rows(url: str, args: argparse.Namespace) -> dict[str, list[float]]:
    small = f"bench:json:{args.size}"
    streams = {n: f"bench:jsonstream:{n * 10}:{n}:{args.per_write}" for n in (2000, 4000)}
    plan: list[tuple[str, Work, str, int]] = []
    if args.rows in ("all", "parse"):
        plan += [
            ("create+decode 1KB", create_and_decode, small, args.calls),
            ("chat_parse 1KB", parse_call, small, args.calls),
        ]
    for n, model in streams.items() if args.rows in ("all", "snapshot") else ():
        plan += [
            (f"plain stream {n // 100}KB/{n}", plain_stream, model, args.streams),
            (f"snapshot stream {n // 100}KB/{n}", snapshot_stream, model, args.streams),
        ]
        if args.jiter:
            plan.append((f"jiter re-parse {n // 100}KB/{n}", jiter_stream, model, 1))
    figures: dict[str, list[float]] = {name: [] for name, *_ in plan}
    core = AtomaCore(TOKEN, url)
    try:
        for _, work, model, _ in plan:  # warm-up: connections, imports, compiled schema
            await work(core, model)
        for _ in range(args.rounds):
            for name, work, model, count in plan:
                figures[name].append(await _per_unit(core, work, model, count))
    finally:
        await core.close()
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=400, help="calls per round for the 1 KB rows")
    parser.add_argument("--streams", type=int, default=4, help="streams per round for the stream rows")
    parser.add_argument("--per-write", type=int, default=10, help="stream events per server write")
    parser.add_argument("--size", type=int, default=1000, help="chars of the parsed JSON answer")
    parser.add_argument("--no-jiter", dest="jiter", action="store_false", help="skip the jiter rows")
    parser.add_argument("--rows", choices=["all", "parse", "snapshot"], default="all")
    args = parser.parse_args(argv)
    figures = run_against(f"bench:json:{args.size}", lambda url: _rows(url, args))
    print(f"rounds={args.rounds}, answer {len(json_document(args.size))} chars; CPU us per call / per chunk")
    for name, values in figures.items():
        print(f"  {name:28} {statistics.median(values):9.2f}")

    def ratio(a: str, b: str) -> str:
        return f"{median_ratio(figures[a], figures[b]):.3f}x"

    if "chat_parse 1KB" in figures:
        print(
            f"chat_parse / (chat_create + decode), 1KB: {ratio('chat_parse 1KB', 'create+decode 1KB')} (<= 1.10x)"
        )
    if "plain stream 20KB/2000" not in figures:
        return
    for n in (2000, 4000):
        tag = f"{n // 100}KB/{n}"
        print(
            f"snapshot / plain stream per chunk, {tag}: {ratio(f'snapshot stream {tag}', f'plain stream {tag}')} (<= 2x)"
        )
    linear = ratio("snapshot stream 40KB/4000", "snapshot stream 20KB/2000")
    print(f"snapshot per chunk, 40KB/4000 over 20KB/2000: {linear} (linear: ~1.0x)")
    if args.jiter:
        quadratic = ratio("jiter re-parse 40KB/4000", "jiter re-parse 20KB/2000")
        print(f"jiter re-parse per chunk, 40KB/4000 over 20KB/2000: {quadratic} (quadratic: ~2x)")


if __name__ == "__main__":
    main()
