"""The batch row: `batch_run` next to a plain `asyncio.gather` loop over `chat_create`, the same
small requests at the same concurrency, each variant in its own fresh process (pinned like the
other workers), against the bench server. Figures: requests/s and client CPU per request.

    python -m benchmarks.batch [--count 2000] [--concurrency 64] [--rounds 5]

Variants: `gather` (one coroutine per request under an `asyncio.Semaphore`, as examples/fan_out.py
does), `batch` (`batch_run`, no limits set) and `batch-limited` (`batch_run` with request and
token limits far above what the machine reaches, so the buckets do their bookkeeping without
ever holding a request back). Writes benchmarks/out/batch.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from typing import Any

from .clients import MESSAGES, TOKEN
from .payloads import expect
from .run import CLIENT_CPU, OUT, ROOT, spawn
from .server_process import ServerProcess

VARIANTS = ["gather", "batch", "batch-limited"]
SMALL = "bench:small"


async def _gather(core: Any, count: int, concurrency: int) -> list[Any]:
    from atoma_funcs import chat_create

    gate = asyncio.Semaphore(concurrency)

    async def one() -> Any:
        async with gate:
            return await chat_create(core, {"model": SMALL, "messages": MESSAGES})

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def _batch(core: Any, count: int, concurrency: int, limited: bool) -> list[Any]:
    from atoma_funcs import batch_run

    items = (
        {"custom_id": str(i), "url": "/v1/chat/completions", "body": {"model": SMALL, "messages": MESSAGES}}
        for i in range(count)
    )
    limits = {"requests_per_minute": 1e9, "tokens_per_minute": 1e12} if limited else {}
    return [r.result async for r in batch_run(core, items, concurrency=concurrency, **limits)]


async def _measure(variant: str, url: str, count: int, concurrency: int) -> dict[str, Any]:
    from atoma_core import AtomaCore
    from atoma_funcs import chat_create

    core = AtomaCore(TOKEN, url, connection_limit=max(100, concurrency))
    try:
        (await chat_create(core, {"model": SMALL, "messages": MESSAGES})).unwrap()  # warm up
        wall0, cpu0 = time.perf_counter(), time.process_time()
        if variant == "gather":
            results = await _gather(core, count, concurrency)
        else:
            results = await _batch(core, count, concurrency, limited=variant == "batch-limited")
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    finally:
        await core.close()
    tokens = sum(r.value.usage.completion_tokens for r in results if r.ok)
    return {"variant": variant, "cpu": cpu, "wall": wall, "ok": sum(r.ok for r in results), "tokens": tokens}


def _run_round(url: str, count: int, concurrency: int, cpu: int | None, order: list[str]) -> list[dict[str, Any]]:
    records = []
    for variant in order:
        argv = [sys.executable, "-m", "benchmarks.batch", "--worker", variant, "--url", url]
        argv += ["--count", str(count), "--concurrency", str(concurrency)]
        done = spawn(argv, cpu)
        if done["rc"] != 0:
            raise SystemExit(f"{variant} failed:\n{done['stderr'][-2000:]}")
        record = json.loads(done["stdout"].strip().splitlines()[-1])
        wanted = {"ok": count, "tokens": expect(SMALL).tokens * count}
        if {k: record[k] for k in wanted} != wanted:
            raise SystemExit(f"{variant} decoded {record}, expected {wanted}")
        records.append(record)
    return records


def _table(records: list[dict[str, Any]], count: int, concurrency: int) -> str:
    rows = [
        f"{count:,} small requests at concurrency {concurrency}, medians over rounds",
        "| variant | requests/s | client CPU us/request | CPU vs gather |",
        "|---|---:|---:|---:|",
    ]
    by_round: dict[int, dict[str, dict[str, Any]]] = {}
    for record in records:
        by_round.setdefault(record["round"], {})[record["variant"]] = record
    for variant in VARIANTS:
        mine = [r for r in records if r["variant"] == variant]
        rate = statistics.median(count / r["wall"] for r in mine)
        cpu_us = statistics.median(r["cpu"] / count * 1e6 for r in mine)
        ratio = statistics.median(rnd[variant]["cpu"] / rnd["gather"]["cpu"] for rnd in by_round.values())
        rows.append(f"| {variant} | {rate:,.0f} | {cpu_us:.0f} | {ratio:.2f}x |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        record = asyncio.run(_measure(args.worker, args.url, args.count, args.concurrency))
        print(json.dumps(record))
        return 0

    cpus = sorted(os.sched_getaffinity(0))
    client_cpu = cpus[CLIENT_CPU] if len(cpus) > 1 else None
    server_cpu = cpus[-1] if client_cpu is not None else None
    records = []
    with ServerProcess(sys.executable, ROOT, server_cpu) as server:
        for rnd in range(args.rounds):
            order = VARIANTS[rnd % len(VARIANTS) :] + VARIANTS[: rnd % len(VARIANTS)]
            for record in _run_round(server.url, args.count, args.concurrency, client_cpu, order):
                records.append({**record, "round": rnd})
            print(f"[round {rnd + 1}/{args.rounds}] done", file=sys.stderr)
    text = _table(records, args.count, args.concurrency)
    print(text)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "batch.json").write_text(json.dumps({"table": text, "records": records}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
