"""Lifecycle: sessions per event loop, clean shutdown with warnings as errors, cancellation at
any point, and bounded memory against hostile servers."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from atoma_core import AtomaCore, Err, errors
from atoma_core.testing import Sandbox, faults
from atoma_funcs import chat_create, chat_create_stream

from .conftest import CHAT, STREAM_CHAT, TOKEN, acquired_connections


@pytest.fixture(scope="module")
def sandbox_process() -> Iterator[str]:
    """The sandbox in its own process, so client scripts can outlive any one event loop."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "atoma_core.testing", "--port", "0", "--token", TOKEN],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    yield url
    proc.terminate()
    proc.wait(10)
    proc.stdout.close()


def run_strict(script: str, url: str) -> subprocess.CompletedProcess[str]:
    """Run a client script with warnings as errors and asyncio debug on; return the process."""
    env = {**os.environ, "PYTHONASYNCIODEBUG": "1", "SANDBOX_URL": url, "TOKEN": TOKEN}
    return subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error::ResourceWarning", "-c", textwrap.dedent(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_one_core_across_two_asyncio_run_calls(sandbox_process: str) -> None:
    proc = run_strict(
        """
        import asyncio, gc, os
        from atoma_core import AtomaCore
        from atoma_funcs import chat_create, chat_create_stream
        core = AtomaCore(os.environ["TOKEN"], os.environ["SANDBOX_URL"])   # one per container
        REQ = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}

        async def handler():
            asyncio.get_running_loop().slow_callback_duration = 10  # first imports are slow, not wrong
            assert (await chat_create(core, REQ)).ok
            done = await (await chat_create_stream(core, REQ)).unwrap().collect()
            assert done.ok
            return done.value.choices[0].message.content

        print(asyncio.run(handler()))
        print(asyncio.run(handler()))   # a new loop: a new session, no "different loop" error
        gc.collect()
        """,
        sandbox_process,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["You said: hi", "You said: hi"]
    assert proc.stderr == ""


def test_fault_sequence_then_close_leaves_nothing_open(sandbox_process: str) -> None:
    proc = run_strict(
        """
        import asyncio, gc, os
        from atoma_core import AtomaCore, RequestOptions, RetryConfig, Timeouts
        from atoma_core.testing import faults
        from atoma_funcs import chat_create, chat_create_stream

        def sockets():
            count = 0
            for fd in os.listdir("/proc/self/fd"):
                try:
                    count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
                except FileNotFoundError:  # the directory listing's own fd
                    pass
            return count

        REQ = {"model": "m", "messages": [{"role": "user", "content": "one two three"}]}

        async def main():
            asyncio.get_running_loop().slow_callback_duration = 10  # first imports are slow, not wrong
            before = sockets()
            core = AtomaCore(os.environ["TOKEN"], os.environ["SANDBOX_URL"],
                             timeouts=Timeouts(read=0.5, idle=0.3), retry_config=RetryConfig.none())
            for _ in range(3):
                assert (await chat_create(core, REQ)).ok
                res = await chat_create_stream(core, REQ)
                async for chunk in res.unwrap():
                    break                                   # early break, no async with
                await res.unwrap().aclose()
                done = await (await chat_create_stream(core, REQ)).unwrap().collect()
                assert done.ok
            await chat_create(core, REQ, RequestOptions(server_url="http://127.0.0.1:9"))  # refused
            await core.close()
            await core.close()                              # idempotent
            gc.collect()
            print(before, sockets())

        asyncio.run(main())
        """,
        sandbox_process,
    )
    assert proc.returncode == 0, proc.stderr
    before, after = proc.stdout.split()
    assert before == after
    assert proc.stderr == ""


@pytest.mark.parametrize("delay", [0.0, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1])
async def test_cancel_at_any_point_releases_everything(delay: float) -> None:
    async with Sandbox(chunk_delay=0.03) as sandbox, AtomaCore(TOKEN, sandbox.url) as core:

        async def work() -> None:
            assert (await chat_create(core, CHAT)).ok
            res = await chat_create_stream(core, STREAM_CHAT)
            async with res.unwrap() as stream:
                async for _ in stream:
                    pass

        task = asyncio.create_task(work())
        await asyncio.sleep(delay)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert acquired_connections(core) == 0
        assert (await chat_create(core, CHAT)).ok  # still usable


async def test_body_size_limit(sandbox: Sandbox) -> None:
    async with AtomaCore(TOKEN, sandbox.url, max_body_size=1_000) as core:
        big = {"model": "m", "messages": [{"role": "user", "content": "word " * 400}]}
        res = await chat_create(core, big)
        assert isinstance(res, Err) and type(res.error) is errors.ResponseTooLargeError
        assert res.error.limit == 1_000
        assert (await chat_create(core, CHAT)).ok
        assert acquired_connections(core) == 0


async def test_event_size_limit(sandbox: Sandbox) -> None:
    sandbox.script(faults.oversized_event(200_000))
    async with AtomaCore(TOKEN, sandbox.url, max_event_size=50_000) as core:
        res = await chat_create_stream(core, CHAT)
        done = res if isinstance(res, Err) else await res.value.collect()
        assert isinstance(done, Err) and type(done.error) is errors.ResponseTooLargeError
        assert done.error.partial is not None
        assert acquired_connections(core) == 0


async def test_close_is_idempotent_and_core_reopens(sandbox: Sandbox) -> None:
    core = AtomaCore(TOKEN, sandbox.url)
    await core.close()  # never used: nothing to close
    assert (await chat_create(core, CHAT)).ok
    await core.close()
    await core.close()
    assert (await chat_create(core, CHAT)).ok  # a closed core opens a fresh session on demand
    await core.close()
