"""What choosing a target costs a call that needs no choice: a core with a fallback and a breaker
configured (hedge off) that never trigger, against a plain core, in ONE warm process.

    python -m benchmarks.route_cost            # both parts
    python -m benchmarks.route_cost --step     # the route step alone (no HTTP), ns per call
    python -m benchmarks.route_cost --http     # whole calls against the bench server, CPU us per request

`--step`: the request path with its one attempt replaced by a stub that answers at once, so
what is timed is `call()` minus the network: plain vs resilient, alternating, median of rounds;
their difference is the route's cost per call. `--http`: `chat_create` over loopback, plain and
resilient cores alternating (like `pair.py`), median per-round ratio. `--profile` adds a cProfile
of the resilient step.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import pstats
import statistics
import time
from typing import Any

import msgspec

from atoma_core import AtomaCore, _request
from atoma_core._body import stamp_meta
from atoma_core.config import Breaker, Fallback
from atoma_core.models.chat import ChatCompletionResponse
from atoma_funcs import chat_create

MESSAGES = [{"role": "user", "content": "hi"}]
REQUEST = {"model": "bench:small", "messages": MESSAGES}
_decoder = msgspec.json.Decoder(ChatCompletionResponse)
ANSWER = (
    b'{"id":"x","object":"chat.completion","created":1,"model":"bench:small","choices":[{"index":0,'
    b'"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}'
)


def _cores(url: str) -> dict[str, AtomaCore]:
    resilient = {"fallbacks": [Fallback(model="bench:fallback")], "breaker": Breaker()}
    return {
        "plain": AtomaCore(bearer_auth="bench", server_url=url),
        "resilient": AtomaCore(bearer_auth="bench", server_url=url, **resilient),  # type: ignore[arg-type]
    }


async def _stub_attempt(core: Any, op: Any, ctx: Any, url: Any, headers: Any, body: Any) -> Any:
    """The attempt without the network: the answer decoded and stamped as `json_response` does."""
    value = _decoder.decode(ANSWER)
    stamp_meta(value, ctx.attempts, None, {}, 0.0)
    return value


async def _loop(core: AtomaCore, count: int) -> float:
    """CPU ns per call of this process (others' load on the machine left out)."""
    started = time.process_time()
    for _ in range(count):
        result = await chat_create(core, REQUEST)
        assert result.ok, result
    return (time.process_time() - started) / count * 1e9


async def _step(count: int, rounds: int, profile: bool) -> None:
    real = _request._attempt
    _request._attempt = _stub_attempt  # type: ignore[assignment]
    cores = _cores("http://127.0.0.1:9")
    try:
        figures: dict[str, list[float]] = {name: [] for name in cores}
        for core in cores.values():
            await _loop(core, 200)
        gc.collect()
        gc.disable()  # no collection lands in one client's turn only
        try:
            for i in range(rounds):
                order = list(cores.items()) if i % 2 == 0 else list(reversed(cores.items()))
                for name, core in order:
                    figures[name].append(await _loop(core, count))
        finally:
            gc.enable()
        plain, resilient = statistics.median(figures["plain"]), statistics.median(figures["resilient"])
        diffs = [r - p for p, r in zip(figures["plain"], figures["resilient"], strict=True)]
        print(
            f"step (no HTTP), ns/call, median of {rounds} x {count}: plain {plain:.0f}, resilient "
            f"{resilient:.0f}; route cost {statistics.median(diffs):.0f} ns/call "
            f"(per round {min(diffs):.0f}..{max(diffs):.0f})"
        )
        if profile:
            profiler = cProfile.Profile()
            profiler.enable()
            await _loop(cores["resilient"], count)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    finally:
        _request._attempt = real  # type: ignore[assignment]
        for core in cores.values():
            await core.close()


async def _cpu(core: AtomaCore, count: int) -> float:
    gc.collect()
    started = time.process_time()
    for _ in range(count):
        (await chat_create(core, REQUEST)).unwrap()
    return (time.process_time() - started) / count * 1e6


async def _http(url: str, count: int, rounds: int) -> dict[str, list[float]]:
    cores = _cores(url)
    figures: dict[str, list[float]] = {name: [] for name in cores}
    try:
        for core in cores.values():
            await _cpu(core, 20)
        for i in range(rounds):
            order = list(cores.items()) if i % 2 == 0 else list(reversed(cores.items()))
            for name, core in order:
                figures[name].append(await _cpu(core, count))
    finally:
        for core in cores.values():
            await core.close()
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--step", action="store_true", help="only the route step, no HTTP")
    parser.add_argument("--http", action="store_true", help="only whole calls against the bench server")
    parser.add_argument("--profile", action="store_true", help="cProfile the resilient step")
    parser.add_argument("--count", type=int, default=1000, help="calls per client per round (HTTP: /5)")
    parser.add_argument("--rounds", type=int, default=41)
    args = parser.parse_args(argv)
    both = not (args.step or args.http)
    if args.step or both:
        asyncio.run(_step(args.count, args.rounds, args.profile))
    if args.http or both:
        from .server_process import median_ratio, run_against

        count = max(1, args.count // 5)
        figures = run_against("bench:small", lambda url: _http(url, count, args.rounds))
        diffs = [r - p for p, r in zip(figures["plain"], figures["resilient"], strict=True)]
        print(
            f"HTTP bench:small, CPU us/request, median of {args.rounds} x {count}: plain "
            f"{statistics.median(figures['plain']):.2f}, resilient {statistics.median(figures['resilient']):.2f}; "
            f"per-round ratio {median_ratio(figures['resilient'], figures['plain']):.3f}x, "
            f"difference {statistics.median(diffs):.2f} us"
        )


if __name__ == "__main__":
    main()
