"""What node-key verification costs once a key is verified: client CPU and wall time per
confidential request and per confidential stream, with no verifier ("off"), with
`SuiKeyCommitments` (its (node, key) cache warm: "sui") and with `PinnedKeys` ("pinned").

    python -m benchmarks.node_key_cost [--rounds 5] [--requests 500] [--streams 50] [--chunks 200]

Runs against the bench server (`benchmarks.server`, its own process) for the proxy and node; the
Sui full node is the sandbox's (`atoma_core.testing.SuiChain`), in this process, holding the bench
node's key: it is asked once per core, before the timed part. The modes alternate within each
round in this one process; each figure is a median over rounds. The first line is what a warm
check alone costs per call (`verify_node_key` on a verified key).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from atoma_core import AtomaCore
from atoma_core.attest import PinnedKeys, SuiKeyCommitments
from atoma_core.testing import SuiChain
from atoma_funcs import confidential_chat_create, confidential_chat_create_stream, nodes_create_lock

from .clients import MESSAGES, TOKEN
from .server_process import ServerProcess, pin

ROOT = Path(__file__).resolve().parent.parent
MODES = ("off", "sui", "pinned")


async def _requests(core: AtomaCore, count: int) -> None:
    for _ in range(count):
        (await confidential_chat_create(core, {"model": "bench:small", "messages": MESSAGES})).unwrap()


async def _streams(core: AtomaCore, count: int, chunks: int) -> None:
    model = f"bench:stream:{chunks}:1:0"
    for _ in range(count):
        res = await confidential_chat_create_stream(core, {"model": model, "messages": MESSAGES})
        async with res.unwrap() as stream:
            async for _ in stream:
                pass


async def _measure(work: Any) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one workload."""
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    await work
    return time.process_time() - cpu, time.perf_counter() - wall


async def one_mode(url: str, verifier: Any, args: argparse.Namespace) -> list[tuple[float, float]]:
    core = AtomaCore(TOKEN, url, node_key_verifier=verifier)
    try:
        await _requests(core, 10)  # warm-up: connection, lock, the one key check, first-call imports
        await _streams(core, 1, 8)
        return [
            await _measure(_requests(core, args.requests)),
            await _measure(_streams(core, args.streams, args.chunks)),
        ]
    finally:
        await core.close()


async def _cache_hit(url: str, verifier: SuiKeyCommitments, node: int, key: bytes) -> float:
    """Seconds per `verify_node_key` call once the pair is verified: what every attempt pays."""
    async with AtomaCore(TOKEN, url) as core:
        (await verifier.verify_node_key(core, node, key)).unwrap()
        runs = []
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(100_000):
                await verifier.verify_node_key(core, node, key)
            runs.append((time.perf_counter() - started) / 100_000)
    return statistics.median(runs)


async def main(args: argparse.Namespace) -> None:
    pin(os.getpid(), 0)
    with ServerProcess(sys.executable, ROOT, (os.cpu_count() or 1) - 1) as server:
        async with AtomaCore(TOKEN, server.url) as probe:
            lock = (await nodes_create_lock(probe, {"model": "bench:small"})).unwrap()
        key = base64.b64decode(lock.public_key)
        chain = SuiChain.history(lock.node_small_id, key)
        app = web.Application()
        app.router.add_post("/", chain.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        rpc_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        verifiers = {
            "off": None,
            "sui": SuiKeyCommitments(rpc_url=rpc_url, atoma_db=chain.atoma_db, package=chain.package),
            "pinned": PinnedKeys({lock.node_small_id: key}),
        }
        hit = await _cache_hit(server.url, verifiers["sui"], lock.node_small_id, key)
        rows: dict[str, list[list[tuple[float, float]]]] = {mode: [] for mode in MODES}
        try:
            for _ in range(args.rounds):
                for mode in MODES:
                    rows[mode].append(await one_mode(server.url, verifiers[mode], args))
        finally:
            await runner.cleanup()
    print(f"rounds={args.rounds} requests={args.requests} streams={args.streams}x{args.chunks} chunks")
    print(f"Sui RPC requests in all: {len(chain.requests)} (the cache is the verifier's: one check)")
    print(f"SuiKeyCommitments.verify_node_key, cache warm: {hit * 1e6:.2f} us per call (median of 5 x 100k)")
    print("mode     CPU us/request  wall us/request   CPU ms/stream  wall ms/stream")
    for mode in MODES:
        req_cpu = statistics.median(r[0][0] for r in rows[mode]) / args.requests * 1e6
        req_wall = statistics.median(r[0][1] for r in rows[mode]) / args.requests * 1e6
        st_cpu = statistics.median(r[1][0] for r in rows[mode]) / args.streams * 1e3
        st_wall = statistics.median(r[1][1] for r in rows[mode]) / args.streams * 1e3
        print(f"{mode:7}  {req_cpu:14.1f}  {req_wall:15.1f}   {st_cpu:13.3f}  {st_wall:14.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--chunks", type=int, default=200)
    asyncio.run(main(parser.parse_args()))
