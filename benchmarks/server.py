"""The bench server: aiohttp.web on 127.0.0.1 answering `POST /v1/chat/completions` from bytes
encoded once per model name (see `payloads`), so serving costs little next to the clients.

    python -m benchmarks.server [--port 0]     prints "PORT <n>" once listening

`GET /bench/release/<group>` lets the held streams of a group (`bench:hold:<group>:N:H`) go on.
With `--phases` it also notes, per chat request, when each step of its way to the first write
ended (`time.perf_counter()`, the system's monotonic clock, so a client's own marks line up) and
the CPU the handler used, and `GET /bench/phases` hands them over (benchmarks/ttft_phases.py).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import sys
import time
from typing import Any, Callable

from aiohttp import web

from .payloads import Spec, hold_writes, parse_model, render

_MODEL = re.compile(rb'"model"\s*:\s*"([^"]+)"')
_JSON = {"Content-Type": "application/json", "x-request-id": "req-bench"}
_SSE = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "x-request-id": "req-bench"}
Marks = list[tuple[str, float]] | None  # one request's marks, when measuring (`--phases`)


class BenchServer:
    def __init__(self, phases: bool = False) -> None:
        # Per chat request, when measuring: (name, perf_counter()) marks, the handler's CPU last.
        self._phases: list[list[tuple[str, float]]] | None = [] if phases else None
        self._cache: dict[bytes, tuple[Spec, bytes | list[bytes]]] = {}
        self._released: dict[str, asyncio.Event] = {}
        self._sandbox_node: Any = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/nodes/lock", self.lock)
        app.router.add_post("/v1/confidential/chat/completions", self.chat)
        app.router.add_get("/bench/release/{group}", self.release)
        if self._phases is not None:
            app.router.add_get("/bench/phases", self.phases)
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
        marks = self._begin()
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return web.json_response({"error": {"code": "AUTH_ERROR", "message": "no token"}}, status=401)
        raw = await request.read()
        _mark(marks, "read")
        if request.path.startswith("/v1/confidential/"):
            return await self._confidential(request, raw, marks)
        found = self._found(raw)
        if isinstance(found, web.Response):
            return found
        spec, answer = found
        if isinstance(answer, bytes):
            return web.Response(body=answer, headers=_JSON)
        response = await _prepare(request, marks)
        return await self._send(response, spec, answer, 0, marks)

    async def _confidential(self, request: web.Request, raw: bytes, marks: Marks) -> web.StreamResponse:
        """Open the request, answer it as usual, and seal the answer or each event: the headers
        go out first (as a node's do, before its first event exists: the client reads them
        while the first write is sealed, ~10 us sooner to the first token than sealing first),
        then the first write is sealed and sent with nothing awaited in between (time to first
        token); the rest are sealed together and then sent back to back, as the plain answer's
        writes are, so a client reads them as it reads a plain stream."""
        node = self._node()
        opened = node.open_request(raw)
        key = opened.key
        _mark(marks, "opened")
        found = self._found(opened.plaintext)
        if isinstance(found, web.Response):
            return found
        spec, answer = found
        seal = node.seal_event
        if isinstance(answer, bytes):
            return web.Response(body=seal(key, answer), headers=_JSON)
        if not answer:
            return await self._send(await _prepare(request, marks), spec, answer, 0, marks)
        response = await _prepare(request, marks)
        first = _seal_write(seal, key, answer[0])
        _mark(marks, "sealed")
        await response.write(first)
        _mark(marks, "written", cpu=True)
        sealed = [first, *(_seal_write(seal, key, data) for data in answer[1:])]
        return await self._send(response, spec, sealed, 1, marks)

    def _found(self, raw: bytes) -> tuple[Spec, bytes | list[bytes]] | web.Response:
        """The answer to the model named in a request's JSON, or the 400 for a name not known."""
        found = _MODEL.search(raw)
        try:
            return self._answer(found.group(1) if found else b"")
        except ValueError as exc:
            return web.json_response({"error": {"code": "REQUEST_ERROR", "message": str(exc)}}, status=400)

    async def _send(
        self, response: web.StreamResponse, spec: Spec, answer: list[bytes], sent: int, marks: Marks
    ) -> web.StreamResponse:
        """The writes of a stream from `sent` on (a held one waits for its release), then its end."""
        if spec.kind == "hold":
            before = hold_writes(spec)
            for data in answer[sent:before]:
                await response.write(data)
            await self._released.setdefault(spec.group, asyncio.Event()).wait()
            answer, sent = answer[max(before, sent) :], 0
        for data in answer[sent:]:
            await response.write(data)
            if marks is not None and marks[-1][0] != "cpu_used":
                _mark(marks, "written", cpu=True)
        await response.write_eof()
        return response

    def _begin(self) -> Marks:
        """This request's marks, when measuring: its start, and the CPU used so far."""
        if self._phases is None:
            return None
        marks = [("start", time.perf_counter()), ("cpu", time.process_time())]
        self._phases.append(marks)
        return marks

    async def phases(self, request: web.Request) -> web.Response:
        """The marks noted since the last call, and forget them."""
        assert self._phases is not None
        taken, self._phases[:] = list(self._phases), []
        return web.json_response(taken)

    async def release(self, request: web.Request) -> web.Response:
        self._released.setdefault(request.match_info["group"], asyncio.Event()).set()
        return web.Response(text="released")


async def _prepare(request: web.Request, marks: Marks) -> web.StreamResponse:
    """An event stream's response, its headers sent."""
    response = web.StreamResponse(headers=_SSE)
    await response.prepare(request)
    _mark(marks, "headers")
    return response


def _mark(marks: Marks, name: str, *, cpu: bool = False) -> None:
    """Note when a step ended (and, with `cpu`, the CPU the handler used since its start)."""
    if marks is not None:
        marks.append((name, time.perf_counter()))
        if cpu:
            marks.append(("cpu_used", time.process_time() - marks[1][1]))


def _seal_write(seal: Callable[[Any, bytes], bytes], key: Any, write: bytes) -> bytes:
    """One write of a stream sealed for one request: each `data:` event sealed by the node
    (`response_hash`, `signature`), comments kept, so writes and events line up with the plain answer."""
    if write.startswith(b"data: ") and write.find(b"\n\n") == len(write) - 2:  # one event: most writes
        return b"data: " + seal(key, write[6:-2]) + b"\n\n"
    blocks = [
        b"data: " + seal(key, block[6:]) if block.startswith(b"data: ") else block
        for block in write.split(b"\n\n")
    ]
    return b"\n\n".join(blocks)


async def serve(port: int, phases: bool = False) -> None:
    runner = web.AppRunner(BenchServer(phases).app(), access_log=None, handle_signals=False)
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
    parser.add_argument("--phases", action="store_true", help="note when each request's steps end")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.port, args.phases))
    sys.exit(0)


if __name__ == "__main__":
    main()
