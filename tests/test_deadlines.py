"""Every deadline phase fires as `RequestTimeoutError(phase=...)` within a small margin."""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from collections.abc import Iterator

import pytest

from atoma_core import AtomaCore, Err, RequestOptions, RetryConfig, Timeouts, errors
from atoma_core._watchdog import AttemptTimer
from atoma_core.testing import Sandbox, faults
from atoma_funcs import chat_create, chat_create_stream

from .conftest import CHAT, TOKEN

MARGIN = 0.6  # generous: the machine is shared; deadlines of 0.3 s must not take 0.9 s


def core_for(url: str, **timeouts: float) -> AtomaCore:
    return AtomaCore(TOKEN, url, timeouts=Timeouts(**timeouts), retry_config=RetryConfig.none())


def assert_timeout(error: BaseException, phase: str, elapsed: float, limit: float) -> None:
    assert isinstance(error, errors.RequestTimeoutError), repr(error)
    assert error.phase == phase
    assert limit - 0.05 <= elapsed < limit + MARGIN, elapsed


@pytest.fixture
def blackhole() -> Iterator[str]:
    """A listening port whose backlog is full: new connections hang in SYN_SENT."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    filler = socket.create_connection(server.getsockname())
    yield "http://{}:{}".format(*server.getsockname())
    filler.close()
    server.close()


async def test_connect_timeout(blackhole: str) -> None:
    async with core_for(blackhole, connect=0.3) as core:
        started = time.monotonic()
        res = await chat_create(core, CHAT)
    assert isinstance(res, Err)
    assert_timeout(res.error, "connect", time.monotonic() - started, 0.3)


async def test_read_timeout_waiting_for_headers(sandbox: Sandbox) -> None:
    sandbox.script(faults.hang(times=None))
    async with core_for(sandbox.url, read=0.3) as core:
        for call in (chat_create, chat_create_stream):
            started = time.monotonic()
            res = await call(core, CHAT)
            assert isinstance(res, Err)
            assert_timeout(res.error, "read", time.monotonic() - started, 0.3)


async def test_first_token_timeout_ignores_keepalives(sandbox: Sandbox) -> None:
    sandbox.script(faults.delay(5))  # headers now, keep-alive comments every 15 ms, no chunk
    async with core_for(sandbox.url, first_token=0.3) as core:
        started = time.monotonic()
        res = await chat_create_stream(core, CHAT)  # Ok comes with the first event, so: Err
    assert isinstance(res, Err)
    assert_timeout(res.error, "first_token", time.monotonic() - started, 0.3)


async def test_idle_timeout_counts_events_not_bytes(sandbox: Sandbox) -> None:
    sandbox.script(faults.keepalive_forever(after_chunks=3))
    async with core_for(sandbox.url, idle=0.3) as core:
        stream = (await chat_create_stream(core, CHAT)).unwrap()
        chunks = 0
        with pytest.raises(errors.RequestTimeoutError) as info:
            async for _ in stream:
                chunks += 1
                started = time.monotonic()
    assert chunks == 3
    assert_timeout(info.value, "idle", time.monotonic() - started, 0.3)
    assert info.value.partial is not None and info.value.partial.choices[0].message.content == "You said:"


async def test_idle_does_not_count_the_consumers_own_time() -> None:
    async with Sandbox(chunk_delay=0.02) as sandbox, core_for(sandbox.url, idle=0.2) as core:
        stream = (await chat_create_stream(core, CHAT)).unwrap()
        async with stream:
            async for _ in stream:
                time.sleep(0.3)  # noqa: ASYNC251 - a slow consumer holding the loop; the server was not idle
        assert stream.usage is not None


async def test_total_deadline_non_stream(sandbox: Sandbox) -> None:
    sandbox.script(faults.hang())
    async with core_for(sandbox.url) as core:
        started = time.monotonic()
        res = await chat_create(core, CHAT, RequestOptions(timeout_ms=300))
    assert isinstance(res, Err)
    assert_timeout(res.error, "total", time.monotonic() - started, 0.3)


async def test_total_deadline_spans_retries(sandbox: Sandbox) -> None:
    sandbox.script(faults.status(503, headers={"Retry-After": "0.2"}, times=None))
    async with AtomaCore(TOKEN, sandbox.url, timeouts=Timeouts(total=0.5)) as core:
        started = time.monotonic()
        res = await chat_create(core, CHAT, RequestOptions(retries=RetryConfig(max_retries=50)))
        elapsed = time.monotonic() - started
    assert isinstance(res, Err) and isinstance(res.error, errors.InternalServerError)
    assert res.error.attempts == 3 and elapsed < 0.5 + MARGIN


async def test_total_deadline_spans_stream_iteration() -> None:
    async with Sandbox(chunk_delay=0.1) as sandbox, core_for(sandbox.url, total=0.35) as core:
        started = time.monotonic()
        stream = (await chat_create_stream(core, CHAT)).unwrap()
        done = await stream.collect()
    assert isinstance(done, Err)
    assert_timeout(done.error, "total", time.monotonic() - started, 0.35)
    assert done.error.partial is not None and done.error.partial.choices


async def test_sessions_have_no_default_total_timeout(core: AtomaCore) -> None:
    session = await core.session()
    assert session.timeout.total is None


async def test_total_deadline_mid_body_with_a_longer_read_timeout(sandbox: Sandbox) -> None:
    """The headers came, then nothing: `total` still ends the call, plain or streamed."""
    sandbox.script(faults.stall(1, times=None))
    async with core_for(sandbox.url, read=5, total=0.3) as core:
        started = time.monotonic()
        res = await chat_create(core, CHAT)
        assert isinstance(res, Err)
        assert_timeout(res.error, "total", time.monotonic() - started, 0.3)
        started = time.monotonic()
        stream = (await chat_create_stream(core, CHAT)).unwrap()  # the first chunk came
        done = await stream.collect()
    assert isinstance(done, Err)
    assert_timeout(done.error, "total", time.monotonic() - started, 0.3)


async def test_response_deadline_ends_with_the_first_event() -> None:
    """`response` bounds a stream until its first event, never its iteration."""
    async with Sandbox(chunk_delay=0.15) as sandbox, core_for(sandbox.url, response=0.3) as core:
        started = time.monotonic()
        done = await (await chat_create_stream(core, CHAT)).unwrap().collect()
    assert done.unwrap().choices[0].message.content
    assert time.monotonic() - started > 0.3  # ran past the response deadline, uncut


async def test_a_cancellation_from_outside_propagates_not_a_timeout(sandbox: Sandbox) -> None:
    sandbox.script(faults.hang(times=None))
    async with core_for(sandbox.url, read=0.2, total=0.2) as core:
        for call in (chat_create, chat_create_stream):
            task = asyncio.ensure_future(call(core, CHAT))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


@pytest.mark.parametrize("user_cancels_too", [False, True])
async def test_a_deadline_tells_its_cancel_from_the_users(user_cancels_too: bool) -> None:
    """The attempt's deadline comes due in the same loop iteration as the user's own cancel, or
    alone: only alone is the CancelledError the deadline's (then a timeout, else propagated)."""
    loop = asyncio.get_running_loop()

    async def attempt() -> bool:
        timer = AttemptTimer(loop, None, loop.time() + 100)
        task = asyncio.current_task()
        assert task is not None

        def due_now() -> None:
            timer.check(timer.call_due)  # what the sweep does when the deadline passes
            if user_cancels_too:
                task.cancel()

        loop.call_soon(due_now)
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            return timer.expired()
        finally:
            timer.cancel()
        raise AssertionError("not cancelled")

    expired = await asyncio.ensure_future(attempt())
    if user_cancels_too:
        assert not expired or sys.version_info < (3, 11)  # below: no Task.uncancel() to tell them apart
    else:
        assert expired


async def test_no_timer_is_re_armed_per_socket_read() -> None:
    """aiohttp's `sock_read` re-arms a loop timer on every socket read; the SDK's own read
    deadline moves a timestamp instead, so aiohttp's is never set."""
    async with Sandbox(chunk_delay=0.001) as sandbox, core_for(sandbox.url, read=5) as core:
        stream = (await chat_create_stream(core, CHAT)).unwrap()
        async with stream:
            connection = stream._response.connection
            assert connection is not None and connection.protocol is not None
            assert connection.protocol.read_timeout is None
            assert (await stream.collect()).ok


async def test_deadlines_of_many_attempts_on_one_loop(sandbox: Sandbox) -> None:
    """All deadlines of a loop share one loop timer: a short one that comes after long ones
    still fires on time, and so do fifty at once."""
    sandbox.script(faults.hang(times=None))
    async with core_for(sandbox.url, read=5) as slow, core_for(sandbox.url, read=0.3) as fast:
        long_waits = [asyncio.ensure_future(chat_create(slow, CHAT)) for _ in range(3)]
        await asyncio.sleep(0.05)
        started = time.monotonic()
        results = await asyncio.gather(*(chat_create(fast, CHAT) for _ in range(50)))
        elapsed = time.monotonic() - started
        for res in results:
            assert isinstance(res, Err)
            assert_timeout(res.error, "read", elapsed, 0.3)
        assert not any(task.done() for task in long_waits)
        for task in long_waits:
            task.cancel()
        await asyncio.gather(*long_waits, return_exceptions=True)
