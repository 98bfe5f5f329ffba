"""Hostile servers, round two (issue 12): non-finite Retry-After, the default response deadline,
gzip bombs, broken chunked framing, unbounded streams and redirects. Each over real loopback
servers: the sandbox, an aiohttp.web app, or a raw asyncio server for framing aiohttp cannot send."""

from __future__ import annotations

import asyncio
import math
import struct
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from multidict import CIMultiDict

from atoma_core import AtomaCore, Err, Ok, RequestOptions, RetryConfig, Timeouts, errors
from atoma_core._retries import server_retry_after
from atoma_core.testing import Sandbox, faults
from atoma_funcs import chat_create, chat_create_stream

from .conftest import CHAT, TOKEN, _fast_backoff, acquired_connections, serve_app

MiB = 1 << 20
# Every test here is async, even those that await nothing: with pytest-asyncio 1.5, a sync test
# before an async one in a module leaks an event loop (tests/test_retries.py alone shows it).
Call = Callable[..., Awaitable[Any]]
BOTH = pytest.mark.parametrize("call", [chat_create, chat_create_stream], ids=["create", "stream"])


def fast_core(url: str, **kwargs: Any) -> AtomaCore:
    return AtomaCore(TOKEN, url, retry_config=RetryConfig(backoff=_fast_backoff()), **kwargs)


# ---------------------------------------------------------------- 1. Retry-After and deadlines


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "NaN"}, None),
        ({"Retry-After": "nan"}, None),
        ({"Retry-After": "inf"}, None),
        ({"Retry-After": "-Infinity"}, None),
        ({"Retry-After": "1e999"}, None),  # float() overflows to inf
        ({"retry-after-ms": "NaN"}, None),
        ({"retry-after-ms": "nan", "Retry-After": "2"}, 2.0),  # the next header still counts
        ({"retry-after-ms": "inf", "Retry-After": "NaN"}, None),
        ({"Retry-After": "1e308"}, 1e308),  # finite: the cap (max_retry_after_ms) handles it
    ],
)
async def test_non_finite_retry_after_is_ignored(headers: dict[str, str], expected: float | None) -> None:
    wait = server_retry_after(CIMultiDict(headers))
    assert wait == expected and (wait is None or math.isfinite(wait))


@BOTH
@pytest.mark.parametrize("header", ["Retry-After", "retry-after-ms"])
async def test_nan_retry_after_falls_back_to_backoff(sandbox: Sandbox, call: Call, header: str) -> None:
    """It used to reach asyncio.sleep(nan): the call never returned, even with timeout_ms."""
    sandbox.script(faults.status(503, headers={header: "NaN"}, times=None))
    async with fast_core(sandbox.url) as core:
        res = await asyncio.wait_for(call(core, CHAT, RequestOptions(timeout_ms=5_000)), 10)
    assert isinstance(res, Err) and isinstance(res.error, errors.InternalServerError)
    assert res.error.attempts == 3


async def test_a_retry_that_cannot_start_before_the_deadline_is_not_waited_for(sandbox: Sandbox) -> None:
    sandbox.script(faults.status(503, headers={"Retry-After": "2"}, times=None))
    async with fast_core(sandbox.url) as core:
        started = time.monotonic()
        res = await chat_create(core, CHAT, RequestOptions(timeout_ms=1_000))
    assert isinstance(res, Err) and isinstance(res.error, errors.InternalServerError)
    assert res.error.attempts == 1
    assert time.monotonic() - started < 0.9  # returned at once, not after sleeping to the deadline


async def test_default_deadlines() -> None:
    """Every call is bounded by default (600 s until its value is ready); a stream's iteration
    is not (a long generation is legitimate): per read only."""
    timeouts = AtomaCore(TOKEN).timeouts
    assert timeouts == Timeouts()
    assert (timeouts.connect, timeouts.read, timeouts.response) == (10.0, 120.0, 600.0)
    assert (timeouts.first_token, timeouts.idle, timeouts.total) == (None, None, None)


async def test_response_deadline_bounds_a_plain_call(sandbox: Sandbox) -> None:
    sandbox.script(faults.hang())
    async with fast_core(sandbox.url, timeouts=Timeouts(response=0.3)) as core:
        started = time.monotonic()
        res = await chat_create(core, CHAT)
    assert isinstance(res, Err) and isinstance(res.error, errors.RequestTimeoutError)
    assert res.error.phase == "response" and res.error.attempts == 1
    assert 0.25 < time.monotonic() - started < 2


async def test_response_deadline_bounds_a_stream_until_its_first_event(sandbox: Sandbox) -> None:
    """Headers, then keep-alive comments for ever: `read` never fires (bytes keep coming)."""
    sandbox.script(faults.delay(30))
    async with fast_core(sandbox.url, timeouts=Timeouts(response=0.3)) as core:
        started = time.monotonic()
        res = await chat_create_stream(core, CHAT)
        assert acquired_connections(core) == 0
    assert isinstance(res, Err) and isinstance(res.error, errors.RequestTimeoutError)
    assert res.error.phase == "response"
    assert 0.25 < time.monotonic() - started < 2


async def test_a_total_you_set_replaces_the_response_deadline(sandbox: Sandbox) -> None:
    """`total` (or timeout_ms) over 600 s must not be cut at the default `response` of 600 s."""
    sandbox.script(faults.delay(0.5), faults.delay(0.5))
    async with fast_core(sandbox.url, timeouts=Timeouts(response=0.2, total=5)) as core:
        assert isinstance(await chat_create(core, CHAT), Ok)
        res = await chat_create(core, CHAT, RequestOptions(timeouts=Timeouts(response=0.2), timeout_ms=5_000))
        assert isinstance(res, Ok)


async def test_response_deadline_never_cuts_a_started_stream() -> None:
    async with (
        Sandbox(token=TOKEN, chunk_delay=0.1) as sandbox,
        fast_core(sandbox.url, timeouts=Timeouts(response=0.25)) as core,
    ):
        started = time.monotonic()
        done = await (await chat_create_stream(core, CHAT)).unwrap().collect()
    assert isinstance(done, Ok), done
    assert done.value.choices[0].message.content == "You said: hello there"
    assert time.monotonic() - started > 0.25


# ---------------------------------------------------------------- raw servers


class RawServer:
    """A loopback TCP server running `handler(reader, writer)` per connection; every connection
    task is cancelled and every socket closed on exit."""

    def __init__(
        self, handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
    ) -> None:
        self._handler = handler
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections = 0

    async def __aenter__(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await reader.readuntil(b"\r\n\r\n")
            await self._handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()


def chunked_head(content_type: str) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: "
        + content_type.encode()
        + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
    )


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


FIRST_EVENT = (
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
    b'"choices":[{"index":0,"delta":{"role":"assistant","content":"Hello"}}]}\n\n'
)


def broken_chunks(content_type: str, first: bytes, close: bool) -> Callable[..., Awaitable[None]]:
    """One good chunk, then a malformed chunk-size line (`zz`); the socket then closes or idles."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(chunked_head(content_type) + chunk(first))
        await writer.drain()
        await asyncio.sleep(0.05)  # the bad line arrives in a read of its own
        writer.write(b"zz\r\nnot a chunk\r\n")
        await writer.drain()
        if not close:
            await asyncio.sleep(60)

    return handler


# ---------------------------------------------------------------- 3. broken chunked framing


async def drain(stream: Any) -> None:
    async with stream:
        async for _ in stream:
            pass


@pytest.mark.parametrize("close", [False, True], ids=["socket-open", "server-closes"])
@pytest.mark.parametrize("timeouts", [None, Timeouts(read=2)], ids=["defaults", "read=2"])
async def test_broken_chunk_size_line_ends_a_plain_call(timeouts: Timeouts | None, close: bool) -> None:
    """aiohttp drops the connection on the bad line but never wakes the read: it used to hang."""
    server = RawServer(broken_chunks("application/json", b'{"id": "c1", "choi', close))
    async with server as url, AtomaCore(TOKEN, url, timeouts=timeouts) as core:
        started = time.monotonic()
        res = await asyncio.wait_for(chat_create(core, CHAT), 30)
        elapsed = time.monotonic() - started
        assert acquired_connections(core) == 0
    assert isinstance(res, Err) and type(res.error) is errors.APIConnectionError, res
    assert res.error.attempts == 1 and server.connections == 1  # mid-body: not retried
    assert elapsed < 2 + 0.6


@pytest.mark.parametrize("close", [False, True], ids=["socket-open", "server-closes"])
@pytest.mark.parametrize("timeouts", [None, Timeouts(read=2)], ids=["defaults", "read=2"])
async def test_broken_chunk_size_line_ends_a_stream(timeouts: Timeouts | None, close: bool) -> None:
    server = RawServer(broken_chunks("text/event-stream", FIRST_EVENT, close))
    async with server as url, AtomaCore(TOKEN, url, timeouts=timeouts) as core:
        stream = (await chat_create_stream(core, CHAT)).unwrap()
        started = time.monotonic()
        with pytest.raises(errors.StreamInterruptedError) as caught:
            await asyncio.wait_for(drain(stream), 30)
        elapsed = time.monotonic() - started
        assert acquired_connections(core) == 0
    assert caught.value.partial.choices[0].message.content == "Hello"
    assert elapsed < 2 + 0.6


async def test_broken_chunk_size_line_before_the_first_event_is_retried() -> None:
    server = RawServer(broken_chunks("text/event-stream", b": keep-alive\n\n", close=False))
    async with server as url, fast_core(url, timeouts=Timeouts(read=2)) as core:
        res = await asyncio.wait_for(chat_create_stream(core, CHAT), 30)
        assert acquired_connections(core) == 0
    assert isinstance(res, Err) and type(res.error) is errors.APIConnectionError, res
    assert res.error.attempts == 3 and server.connections == 3


async def test_trickled_headers_are_bounded_by_the_response_deadline() -> None:
    """One header byte per 50 ms resets every per-read timer; only a call deadline ends it."""

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.05)

    async with RawServer(trickle) as url, fast_core(url, timeouts=Timeouts(response=0.5)) as core:
        for call in (chat_create, chat_create_stream):
            started = time.monotonic()
            res = await asyncio.wait_for(call(core, CHAT), 30)
            assert isinstance(res, Err) and isinstance(res.error, errors.RequestTimeoutError), res
            assert res.error.phase == "response"
            assert time.monotonic() - started < 0.5 + 0.6
        assert acquired_connections(core) == 0


# ---------------------------------------------------------------- 2. gzip bombs


def gzip_of_zeros(mib: int) -> bytes:
    """gzip of `mib` MiB of zero bytes, ~1 KiB per MiB. Every 1 MiB block compresses to the same
    bytes after a full flush, so one block is compressed and repeated."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(MiB)) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = 0x5B64C2B0 if mib == 1024 else zlib.crc32(bytes(mib * MiB))  # crc32 of 1 GiB of zeros
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    return header + block * mib + compressor.flush() + struct.pack("<II", crc, (mib * MiB) & 0xFFFFFFFF)


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return gzip_of_zeros(1024)


@pytest.fixture
async def bomb_server(bomb: bytes) -> AsyncIterator[tuple[str, list[int]]]:
    """An aiohttp.web app answering every chat request with the 1 GiB bomb, with its Content-Length,
    under the status the test puts in `statuses[0]`."""
    statuses = [200]

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
        return web.Response(body=bomb, status=statuses[0], headers=headers)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    async with serve_app(app) as url:
        yield url, statuses


async def peak_memory(call: Awaitable[Any]) -> tuple[Any, int]:
    """The call's result and the peak of Python memory allocated while it ran."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        result = await call
        return result, tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


@BOTH
async def test_gzip_bomb_with_content_length_is_refused(
    bomb_server: tuple[str, list[int]], call: Call
) -> None:
    """~1 MB on the wire, 1 GiB inflated: the limit counts decoded bytes, not the Content-Length.
    A stream request answered with JSON reads that body through the same bounded reader."""
    url, _ = bomb_server
    async with AtomaCore(TOKEN, url, max_body_size=8 * MiB, retry_config=RetryConfig.none()) as core:
        res, peak = await peak_memory(call(core, CHAT))
        assert acquired_connections(core) == 0
    assert isinstance(res, Err) and isinstance(res.error, errors.ResponseTooLargeError), res
    assert res.error.limit == 8 * MiB
    assert peak < 8 * MiB + 8 * MiB, peak  # the limit plus one read's worth, not 1 GiB


@BOTH
async def test_gzip_bomb_as_an_error_body_keeps_a_bounded_prefix(
    bomb_server: tuple[str, list[int]], call: Call
) -> None:
    url, statuses = bomb_server
    statuses[0] = 500
    async with AtomaCore(TOKEN, url, retry_config=RetryConfig.none()) as core:
        res, peak = await peak_memory(call(core, CHAT))
        assert acquired_connections(core) == 0
    assert isinstance(res, Err) and isinstance(res.error, errors.InternalServerError), res
    assert res.error.body == "\x00" * (64 * 1024)  # the first 64 KiB, decoded
    assert peak < 8 * MiB, peak


# ---------------------------------------------------------------- 4. accumulated stream size


async def test_a_stream_past_max_stream_size_fails_with_what_it_had(sandbox: Sandbox) -> None:
    words = " ".join(f"w{i}" for i in range(4_000))  # 4,000 deltas, ~1.3 MB of event data
    request = {**CHAT, "messages": [{"role": "user", "content": words}]}
    async with fast_core(sandbox.url, max_stream_size=256 * 1024) as core:
        stream = (await chat_create_stream(core, request)).unwrap()
        chunks = 0
        with pytest.raises(errors.ResponseTooLargeError) as caught:
            async with stream:
                async for _ in stream:
                    chunks += 1
        assert acquired_connections(core) == 0
    error = caught.value
    assert error.limit == 256 * 1024 and "max_stream_size" in error.message
    text = error.partial.choices[0].message.content
    assert 100 < chunks < 4_000 and text.startswith("You said: w0 w1")
    assert len(text) < 256 * 1024


async def test_a_stream_within_max_stream_size_is_whole(sandbox: Sandbox) -> None:
    words = " ".join(f"w{i}" for i in range(4_000))
    request = {**CHAT, "messages": [{"role": "user", "content": words}]}
    async with fast_core(sandbox.url, max_stream_size=4 * MiB) as core:
        done = await (await chat_create_stream(core, request)).unwrap().collect()
    assert isinstance(done, Ok) and done.value.choices[0].message.content == "You said: " + words


async def test_max_stream_size_defaults_to_64_mib() -> None:
    assert AtomaCore(TOKEN).max_stream_size == 64 * MiB


# ---------------------------------------------------------------- 5. redirects


@BOTH
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirects_are_not_followed(sandbox: Sandbox, call: Call, status: int) -> None:
    """A 302 on POST used to become a body-less GET; a 307/308 forwarded the prompt elsewhere."""
    async with Sandbox(token=TOKEN) as elsewhere:
        location = elsewhere.url + "/v1/chat/completions"
        sandbox.script(faults.status(status, headers={"Location": location}, body="", times=None))
        async with fast_core(sandbox.url) as core:
            res = await call(core, CHAT)
            assert acquired_connections(core) == 0
        assert elsewhere.requests == []  # the other origin received nothing
    assert isinstance(res, Err) and type(res.error) is errors.APIError, res
    assert res.error.status_code == status and res.error.attempts == 1
    assert res.error.headers["Location"] == location and location in res.error.message
