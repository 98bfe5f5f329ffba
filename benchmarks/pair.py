"""This SDK and the bare loop, alternating in ONE warm process against the bench server: CPU per
request (or per chunk, for a stream model) of each, and the median of their per-round ratio.

    python -m benchmarks.pair bench:small --count 1000 [--rounds 7]
    python -m benchmarks.pair bench:body:100000 --count 400
    python -m benchmarks.pair bench:stream:2000:50:25 --count 20
    python -m benchmarks.pair bench:small --count 1000 --confidential   # + atoma-confidential

A full run gives each client a fresh process per round; on a machine whose speed drifts from
second to second that pairs figures taken a second or more apart. Here the pair is taken back to
back, many times, with warm allocators: a cross-check for a row whose full-run ratio is in doubt.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from typing import Any

from .clients import atoma, bare
from .server_process import median_ratio, run_against


async def _per_unit(client: Any, model: str, count: int) -> float:
    """CPU us per request, or per chunk when `model` streams."""
    streams = model.startswith("bench:stream")
    units = 0
    gc.collect()
    started = time.process_time()
    for _ in range(count):
        if streams:
            units += (await client.stream(model))[0]
        else:
            await client.complete(model)
            units += 1
    return (time.process_time() - started) / units * 1e6


async def _measure(
    url: str, model: str, count: int, rounds: int, confidential: bool = False
) -> dict[str, list[float]]:
    clients = {"bare": await bare.connect(url, "bare", 100), "atoma": await atoma.connect(url, "atoma", 100)}
    if confidential:
        clients["confidential"] = await atoma.connect(url, "atoma-confidential", 100)
    figures: dict[str, list[float]] = {name: [] for name in clients}
    try:
        for client in clients.values():  # warm-up
            await _per_unit(client, model, 1)
        for _ in range(rounds):
            for name, client in clients.items():
                figures[name].append(await _per_unit(client, model, count))
    finally:
        for client in clients.values():
            await client.aclose()
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "model", help="a bench server model: bench:small, bench:body:S, bench:stream:N:B:K[:D]"
    )
    parser.add_argument("--count", type=int, default=200, help="requests or streams per client per round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--confidential", action="store_true", help="also atoma-confidential, with its ratio to atoma"
    )
    args = parser.parse_args(argv)
    figures = run_against(
        args.model, lambda url: _measure(url, args.model, args.count, args.rounds, args.confidential)
    )
    ratio = median_ratio(figures["atoma"], figures["bare"])
    unit = "chunk" if args.model.startswith("bench:stream") else "request"
    print(
        f"{args.model}: CPU us/{unit} bare {statistics.median(figures['bare']):.2f}, "
        f"atoma {statistics.median(figures['atoma']):.2f}; per-round ratio, median of {args.rounds}: {ratio:.3f}x"
    )
    if args.confidential:
        print(
            f"  confidential {statistics.median(figures['confidential']):.2f} us/{unit}; per-round ratio to "
            f"atoma, median of {args.rounds}: {median_ratio(figures['confidential'], figures['atoma']):.3f}x"
        )


if __name__ == "__main__":
    main()
