"""A real local HTTP server whose chat answer has `choices: []` (well-formed JSON, no answer in
it): what the structured-output functions and the framework adapters must turn into a typed
error rather than an IndexError. The sandbox always answers with a choice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from atoma_core import AtomaCore

EMPTY = {"id": "chatcmpl-0", "object": "chat.completion", "created": 0, "model": "m", "choices": []}


async def _answer(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response(EMPTY)


@asynccontextmanager
async def core_of_a_server_without_choices() -> AsyncIterator[AtomaCore]:
    """An `AtomaCore` (no retries) pointed at the server, closed with it."""
    app = web.Application()
    app.router.add_post("/v1/chat/completions", _answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    core = AtomaCore("token", f"http://127.0.0.1:{port}", retry_config=0)
    try:
        yield core
    finally:
        await core.close()
        await runner.cleanup()
