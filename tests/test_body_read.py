"""`read_body(..., writable=True)`, what a sealed answer is read with: the same bytes as a plain
read, whatever the framing (Content-Length, chunked, gzip, in one piece or many), as a
`bytearray` when it came in several pieces, and the same size limit. Over real loopback."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from atoma_core._body import read_body
from atoma_core.errors import ResponseTooLargeError

BODY = b'{"ciphertext": "' + b"QUJD" * 50_000 + b'", "nonce": "x"}'


async def _answer(request: web.Request) -> web.StreamResponse:
    framing = request.match_info["framing"]
    if framing == "whole":
        return web.Response(body=BODY, content_type="application/json")
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    data = BODY
    if framing == "gzip":
        data = gzip.compress(BODY)
        response.headers["Content-Encoding"] = "gzip"
    if framing in ("chunked", "gzip"):
        response.enable_chunked_encoding()
    else:
        response.content_length = len(data)
    await response.prepare(request)
    for at in range(0, len(data), 30_000):  # pieces that arrive apart
        await response.write(data[at : at + 30_000])
        await asyncio.sleep(0.002)
    await response.write_eof()
    return response


@pytest.fixture
async def url() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/{framing}", _answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.mark.parametrize("framing", ["whole", "pieces", "chunked", "gzip"])
async def test_a_writable_read_gives_the_same_bytes_whatever_the_framing(url: str, framing: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url}/{framing}") as response:
            plain = await read_body(response, 10_000_000)
        async with session.get(f"{url}/{framing}") as response:
            writable = await read_body(response, 10_000_000, None, True)
    assert plain == writable == BODY
    if framing in ("pieces", "chunked"):
        assert isinstance(writable, bytearray)  # several pieces: its reader may reuse the memory


@pytest.mark.parametrize("framing", ["whole", "pieces", "gzip"])
async def test_a_writable_read_keeps_the_size_limit(url: str, framing: str) -> None:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/{framing}") as response:
        with pytest.raises(ResponseTooLargeError):
            await read_body(response, len(BODY) - 1, None, True)
