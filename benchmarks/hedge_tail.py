"""Time to first token with and without a hedge, from one scripted slow tail (issue 25).

The sandbox answers one stream in twenty after `--slow` seconds, the rest at once; the same
script runs without a hedge, with a fixed delay, and with a learned one (a quantile of the recent
times to first byte). Prints p50 / p95 / p99 and the extra requests the hedge sent.

    .venv/bin/python -m benchmarks.hedge_tail [--calls 400] [--slow 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics

from atoma_core import AtomaCore
from atoma_core.config import Hedge
from atoma_core.testing import Sandbox, faults
from atoma_funcs import chat_create_stream

REQUEST = {"model": "m", "messages": [{"role": "user", "content": "one two three"}]}


async def run(calls: int, slow: float, hedge: Hedge | None) -> tuple[list[float], int]:
    script = [faults.delay(slow) if i % 20 == 13 else faults.delay(0.0) for i in range(calls * 2)]
    async with Sandbox() as sandbox, AtomaCore("t", sandbox.url, hedge=hedge) as core:
        sandbox.script(*script)
        ttfts = []
        for _ in range(calls):
            async with (await chat_create_stream(core, REQUEST)).unwrap() as stream:  # type: ignore[arg-type]
                async for _chunk in stream:
                    pass
            ttfts.append(stream.metrics.time_to_first_token or 0.0)
        return ttfts, len(sandbox.requests) - calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--slow", type=float, default=0.5)
    args = parser.parse_args()
    runs = {
        "no hedge": None,
        "hedge, fixed 50 ms": Hedge(delay=0.05, budget=0.1),
        "hedge, learned p90": Hedge(quantile=0.9, min_samples=20, initial_delay=1.0, budget=0.1),
    }
    print(f"{args.calls} streams, one in 20 with its first token after {args.slow:g} s")
    print(f"{'':22} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'extra requests':>15}")
    for name, hedge in runs.items():
        ttfts, extra = asyncio.run(run(args.calls, args.slow, hedge))
        q = statistics.quantiles(ttfts, n=100)
        share = f"{extra} ({extra / args.calls:.1%})"
        print(f"{name:22} {q[49] * 1000:8.1f} {q[94] * 1000:8.1f} {q[98] * 1000:8.1f} {share:>15}")


if __name__ == "__main__":
    main()
