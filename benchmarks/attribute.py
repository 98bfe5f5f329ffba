"""Where a stream's CPU per chunk goes: the bare loop with the SDK's pieces swapped in one at a
time, and the SDK itself, alternating in ONE process against the bench server.

    python -m benchmarks.attribute [--model bench:stream:2000:50:25] [--streams 20] [--rounds 7]

Variants (each a stream read with aiohttp's `iter_any()`, as the bare loop does):
  bare        split on blank lines, strip `data: `, decode the bench's 3-field Structs
  +chunk      ... decode the SDK's whole `ChatCompletionChunk` instead (Atoma's fields included)
  +sse        ... split with the SDK's `SSEDecoder` instead (WHATWG rules, bounds)
  +accumulate ... the whole chunk, and the SDK's `ChunkAccumulator` keeps the answer
  +all        the SDK's decoder, chunk and accumulator, still in the bare loop's one coroutine
  sdk         `chat_create_stream` + `async for`: the above plus the request path, deadlines,
              the event stream's checks and one `__anext__` per chunk
Printed: the median over rounds of CPU us per chunk, and of its ratio to `bare` in that round.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from typing import Any, Callable

import msgspec

from atoma_core import AtomaCore
from atoma_core._accumulate import ChunkAccumulator
from atoma_core._sse import SSEDecoder
from atoma_core.models import ChatCompletionChunk

from .clients import MESSAGES, TOKEN, bare
from .server_process import median_ratio, run_against

_whole_chunk = msgspec.json.Decoder(ChatCompletionChunk).decode


def _split(buffer: bytes, data: bytes) -> tuple[list[bytes], bytes]:
    *events, rest = (buffer + data).split(b"\n\n")
    return [event[6:] for event in events if event.startswith(b"data: ")], rest


async def _bare_variant(client: bare.BareClient, model: str, sse: bool, whole: bool, keep: bool) -> int:
    body = bare._encode({"model": model, "messages": MESSAGES, "stream": True, "stream_options": bare._USAGE})
    decode: Callable[[bytes], Any] = _whole_chunk if whole else bare._chunk
    decoder = SSEDecoder()
    accumulator = ChunkAccumulator()
    chunks = 0
    buffer = b""
    async with client.session.post(client.url, data=body, headers=client.headers) as response:
        async for data in response.content.iter_any():
            if sse:
                events: list[Any] = decoder.feed(data)
            else:
                events, buffer = _split(buffer, data)
            del data
            events.reverse()
            kept = []
            while events:
                chunk = decode(events.pop())
                chunks += 1
                if keep:
                    kept.append(chunk)
            if kept:
                accumulator.extend(kept)  # as the SDK does: a read's chunks at once
    return chunks


async def _sdk(core: AtomaCore, model: str) -> int:
    from atoma_funcs import chat_create_stream

    chunks = 0
    async with (await chat_create_stream(core, {"model": model, "messages": MESSAGES})).unwrap() as stream:
        async for _ in stream:
            chunks += 1
    return chunks


VARIANTS: dict[str, tuple[bool, bool, bool]] = {  # sse, whole chunk, accumulate
    "bare": (False, False, False),
    "+chunk": (False, True, False),
    "+sse": (True, False, False),
    "+accumulate": (False, True, True),
    "+all": (True, True, True),
}


async def _measure(url: str, model: str, streams: int, rounds: int) -> dict[str, list[float]]:
    client = bare.BareClient(url, 8)
    core = AtomaCore(bearer_auth=TOKEN, server_url=url)
    runs: dict[str, Callable[[], Any]] = {
        name: (lambda flags=flags: _bare_variant(client, model, *flags)) for name, flags in VARIANTS.items()
    }
    runs["sdk"] = lambda: _sdk(core, model)
    figures: dict[str, list[float]] = {name: [] for name in runs}
    try:
        for run in runs.values():  # warm-up: imports, connections
            await run()
        for _ in range(rounds):
            for name, run in runs.items():
                gc.collect()
                started = time.process_time()
                chunks = sum([await run() for _ in range(streams)])
                figures[name].append((time.process_time() - started) / chunks * 1e6)
    finally:
        await client.aclose()
        await core.close()
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="bench:stream:2000:50:25", help="the bench server's stream model")
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    figures = run_against(args.model, lambda url: _measure(url, args.model, args.streams, args.rounds))
    print(f"{args.model}, {args.streams} streams x {args.rounds} rounds: CPU us per chunk (ratio to bare)")
    for name, values in figures.items():
        ratio = median_ratio(values, figures["bare"])
        print(f"  {name:12s} {statistics.median(values):7.2f}  ({ratio:.2f}x)")


if __name__ == "__main__":
    main()
