"""The bench server: aiohttp.web on 127.0.0.1 answering `POST /v1/chat/completions` from bytes
encoded once per model name (see `payloads`), so serving costs little next to the clients.

    python -m benchmarks.server [--port 0]     prints "PORT <n>" once listening

`GET /bench/release/<group>` lets the held streams of a group (`bench:hold:<group>:N:H`) go on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import sys
from typing import Any

from aiohttp import web

from .payloads import Spec, hold_writes, parse_model, render

_MODEL = re.compile(rb'"model"\s*:\s*"([^"]+)"')
_JSON = {"Content-Type": "application/json", "x-request-id": "req-bench"}
_SSE = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "x-request-id": "req-bench"}


class BenchServer:
    def __init__(self) -> None:
        self._cache: dict[bytes, tuple[Spec, bytes | list[bytes]]] = {}
        self._released: dict[str, asyncio.Event] = {}
        self._sandbox_node: Any = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/nodes/lock", self.lock)
        app.router.add_post("/v1/confidential/chat/completions", self.chat)
        app.router.add_get("/bench/release/{group}", self.release)
        return app

    def _answer(self, model: bytes) -> tuple[Spec, bytes | list[bytes]]:
        entry = self._cache.get(model)
        if entry is None:
            spec = parse_model(model.decode())
            entry = self._cache[model] = (spec, render(spec))
        return entry

    async def lock(self, request: web.Request) -> web.Response:
        return web.json_response(self._node().lock_response(1))

    def _node(self) -> Any:
        """The confidential node (the sandbox's), made on first use: cryptography only if needed."""
        if self._sandbox_node is None:
            from atoma_core.testing import SandboxNode

            self._sandbox_node = SandboxNode()
        return self._sandbox_node

    async def chat(self, request: web.Request) -> web.StreamResponse:
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return web.json_response({"error": {"code": "AUTH_ERROR", "message": "no token"}}, status=401)
        raw = await request.read()
        key = None
        if request.path.startswith("/v1/confidential/"):  # open it, answer as usual, seal each event
            opened = self._node().open_request(raw)
            raw, key = opened.plaintext, opened.key
        found = _MODEL.search(raw)
        try:
            spec, answer = self._answer(found.group(1) if found else b"")
        except ValueError as exc:
            return web.json_response({"error": {"code": "REQUEST_ERROR", "message": str(exc)}}, status=400)
        if isinstance(answer, bytes):
            if key is not None:
                answer = json.dumps(self._node().seal(key, answer)).encode()
            return web.Response(body=answer, headers=_JSON)
        response = web.StreamResponse(headers=_SSE)
        await response.prepare(request)
        sent = 0
        if key is not None and answer:
            # The first write is sealed and sent at once, as a node sends its first event (time to
            # first token); the rest are sealed together and then go out back to back, as the
            # plain answer's writes do, so a client reads them as it reads a plain stream.
            node = self._node()
            await response.write(_seal_write(node, key, answer[0]))
            answer = answer[:1] + [_seal_write(node, key, data) for data in answer[1:]]
            sent = 1
        if spec.kind == "hold":
            before = hold_writes(spec)
            for data in answer[sent:before]:
                await response.write(data)
            await self._released.setdefault(spec.group, asyncio.Event()).wait()
            answer, sent = answer[max(before, sent) :], 0
        for data in answer[sent:]:
            await response.write(data)
        await response.write_eof()
        return response

    async def release(self, request: web.Request) -> web.Response:
        self._released.setdefault(request.match_info["group"], asyncio.Event()).set()
        return web.Response(text="released")


def _seal_write(node: Any, key: Any, write: bytes) -> bytes:
    """One write of a stream sealed for one request: each `data:` event sealed by the node
    (`response_hash`, `signature`), comments kept, so writes and events line up with the plain answer."""
    blocks = [
        b"data: " + json.dumps(node.seal(key, block[6:])).encode() if block.startswith(b"data: ") else block
        for block in write.split(b"\n\n")
    ]
    return b"\n\n".join(blocks)


async def serve(port: int) -> None:
    runner = web.AppRunner(BenchServer().app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=4096)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"PORT {bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.port))
    sys.exit(0)


if __name__ == "__main__":
    main()
