"""One rate limit shared across processes: a real `redis-server` (installed by `make test`'s
set-up; the tests skip with a note if it cannot start), four processes, the sandbox's own
arrival times. Also the in-process `LocalLimiter`, Redis unreachable, and `atoma batch --limiter`."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from atoma_core import AtomaCore, RequestOptions
from atoma_core.errors import InvalidRequestError, LimiterUnavailableError
from atoma_core.limiter import LocalLimiter, limiter_from_url
from atoma_core.testing import Sandbox, faults
from atoma_funcs import chat_create

from .conftest import CHAT, TOKEN, free_port, stop_process
from .test_cli import PYTHON, _env, assert_clean

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (make test installs Debian's redis-server package)")
    pytest.importorskip("redis", reason="the redis client is not installed (extra 'redis')")
    port = free_port()
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if not _wait_for_port(port, proc):
            pytest.skip("redis-server did not start")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_process(proc)


def _wait_for_port(port: int, proc: subprocess.Popen[bytes]) -> bool:
    import socket

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and proc.poll() is None:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    return False


@pytest.fixture
async def flushed(redis_url: str) -> AsyncIterator[str]:
    import redis.asyncio

    client = redis.asyncio.from_url(redis_url)
    await client.flushdb()
    yield redis_url
    await client.aclose()


async def _workers(
    sandbox: Sandbox, redis_url: str, modes: list[tuple[str, str]], requests: int, per: float
) -> list[str]:
    """Start one worker process per (mode, amount), release them together, return their summaries."""
    procs = []
    for worker, (mode, amount) in enumerate(modes):
        procs.append(
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-W",
                "error::ResourceWarning",
                "-m",
                "tests.limiter_worker",
                sandbox.url,
                redis_url,
                str(worker),
                mode,
                amount,
                str(requests),
                str(per),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=ROOT,
                env=_env(),
            )
        )
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert (await asyncio.wait_for(proc.stdout.readline(), 60)) == b"ready\n"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
        summaries = []
        for proc in procs:
            out, err = await asyncio.wait_for(proc.communicate(), 60)
            assert proc.returncode == 0, err.decode()
            assert_clean(err.decode())
            summaries.append(out.decode().strip())
        return summaries
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


def _split(summaries: list[str]) -> tuple[list[str], list[float]]:
    """Each worker's summary line, and every time Redis let a request through (all workers)."""
    lines, taken = [], []
    for summary in summaries:
        first, times = summary.split("\n")
        lines.append(first)
        taken += json.loads(times)
    return lines, taken


def _most_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    most = 0
    j = 0
    for i, start in enumerate(times):
        while j < len(times) and times[j] < start + window:
            j += 1
        most = max(most, j - i)
    return most


async def test_four_processes_share_one_limit(sandbox: Sandbox, flushed: str) -> None:
    """120 requests per window (the minute scaled down to 3 s), four processes, 250 requests:
    two make plain calls through the core's limiter, two run batch jobs with it. On Redis's clock
    no window holds more than 120 admissions (exactly); at the sandbox no window holds more than
    120 arrivals (less a tenth of it as slack: the trip from admission to arrival varies on a
    loaded machine), and the whole took at least two windows: the limit was binding."""
    requests, per = 120, 3.0
    modes = [("core", "63"), ("core", "62"), ("batch", "63"), ("batch", "62")]
    summaries, taken = _split(await _workers(sandbox, flushed, modes, requests, per))
    assert sorted(summaries) == ["ok 62", "ok 62", "ok 63", "ok 63"]
    assert len(taken) == 250
    assert _most_in_any_window(taken, per) <= requests  # exact, on Redis's clock (ms)
    arrived = [r.received_at for r in sandbox.requests]
    assert len(arrived) == 250
    most = _most_in_any_window(arrived, per * 0.9)
    print(
        f"Redis admissions, most in any {per:g} s: {_most_in_any_window(taken, per)}; sandbox arrivals, "
        f"most in any {per * 0.9:g} s: {most}, in any {per:g} s: {_most_in_any_window(arrived, per)}"
    )
    assert most <= requests
    assert max(arrived) - min(arrived) >= 2 * per * 0.9
    workers = {r.headers["X-Worker"] for r in sandbox.requests}
    assert workers == {"0", "1", "2", "3"}


async def test_one_429_slows_all_four(sandbox: Sandbox, flushed: str) -> None:
    """Four processes call steadily; one of them gets a 429 with Retry-After: 1. The pause is in
    Redis: no process sends anything until it has passed, then all four go on."""
    sandbox.script(*[faults.delay(0.0)] * 60, faults.status(429, headers={"Retry-After": "1"}))
    summaries, _ = _split(await _workers(sandbox, flushed, [("steady", "2.5")] * 4, 10_000, 1.0))
    assert all(s.startswith("ok ") for s in summaries)
    requests = sandbox.requests
    limited = requests[60]
    t429 = limited.received_at
    after = [r for r in requests if r.received_at > t429]
    gap = after[0].received_at - t429  # allow the calls already acquired to land just after
    quiet = [r for r in after if t429 + 0.1 < r.received_at < t429 + 0.9]
    assert quiet == [], f"{len(quiet)} requests during the pause (first after {gap:.3f} s)"
    before = {r.headers["X-Worker"] for r in requests[:60]}
    resumed = {r.headers["X-Worker"] for r in after if r.received_at >= t429 + 0.9}
    assert before == resumed == {"0", "1", "2", "3"}


async def test_redis_unreachable_falls_back_to_a_local_limit_or_fails(sandbox: Sandbox) -> None:
    pytest.importorskip("redis")
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    local = limiter_from_url(nowhere, requests=100, per=1.0)
    async with AtomaCore(TOKEN, sandbox.url, limiter=local) as core:
        with pytest.warns(RuntimeWarning, match="limiting this process alone"):
            assert (await chat_create(core, CHAT)).ok
        assert (await chat_create(core, CHAT)).ok  # warned once
    await local.aclose()
    failing = limiter_from_url(nowhere, requests=100, per=1.0, on_unavailable="fail")
    async with AtomaCore(TOKEN, sandbox.url) as core:
        res = await chat_create(core, CHAT, RequestOptions(limiter=failing))
        assert isinstance(res.error, LimiterUnavailableError)
        assert nowhere not in str(res.error)
    await failing.aclose()
    assert len(sandbox.requests) == 2


async def test_a_local_limiter_paces_calls_and_a_429_pauses_them(sandbox: Sandbox) -> None:
    limiter = LocalLimiter(requests=5, per=0.5)
    async with AtomaCore(TOKEN, sandbox.url, limiter=limiter) as core:
        results = await asyncio.gather(*(chat_create(core, CHAT) for _ in range(12)))
        assert all(r.ok for r in results)
        arrived = [r.received_at for r in sandbox.requests]
        assert _most_in_any_window(arrived, 0.45) <= 5
        assert max(arrived) - min(arrived) >= 2 * 0.5 - 0.05
        sandbox.reset()
        sandbox.script(faults.status(429, headers={"Retry-After": "0.5"}))
        await asyncio.sleep(0.5)
        res = await chat_create(core, CHAT)  # 429, then its retry waits out the pause
        assert res.ok and res.value.meta is not None and res.value.meta.attempts == 2
        first, retry = sandbox.requests
        assert retry.received_at - first.received_at >= 0.45


async def test_the_cli_shares_its_rpm_through_redis(sandbox: Sandbox, flushed: str, tmp_path: Path) -> None:
    import redis.asyncio

    runs = []
    for n in range(2):
        src, out = tmp_path / f"in{n}.jsonl", tmp_path / f"out{n}.jsonl"
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        lines = [{"custom_id": f"{n}-{i}", "url": "/v1/chat/completions", "body": body} for i in range(8)]
        src.write_text("".join(json.dumps(line) + "\n" for line in lines))
        args = [
            "batch",
            str(src),
            "-o",
            str(out),
            "--server-url",
            sandbox.url,
            "--rpm",
            "100",
            "--limiter",
            flushed,
        ]
        runs.append(
            asyncio.create_subprocess_exec(
                *PYTHON, *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(TOKEN)
            )
        )
    procs = await asyncio.gather(*runs)
    for proc in procs:
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        assert_clean(err.decode())
    client = redis.asyncio.from_url(flushed)
    try:
        assert await client.zcard("atoma:window") == 16  # both processes took from one window
    finally:
        await client.aclose()


def test_limiters_are_checked() -> None:
    with pytest.raises(InvalidRequestError, match="requests="):
        LocalLimiter()
    with pytest.raises(InvalidRequestError, match="limiter"):
        RequestOptions(limiter="redis://x")
    with pytest.raises(InvalidRequestError, match="redis://"):
        limiter_from_url("http://x", requests=1)
