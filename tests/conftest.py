"""Shared fixtures: a real sandbox server on loopback and a core pointed at it."""

from __future__ import annotations

import gc
import os
import signal
import socket
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from atoma_core import AtomaCore, RetryConfig
from atoma_core.testing import Sandbox

from .readme_snippets import all_snippets
from .usercheck import Report, probe_sources, run_mypy

TOKEN = "sk-test-secret-token-123"

# A shell that starts a job in the background (`make test &`) starts it with SIGINT ignored, and
# an ignored signal stays ignored in Python and in every child it runs: Ctrl-C's tests would then
# see nothing arrive. They test the SDK, not how the suite was launched, so Ctrl-C is restored.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(token=TOKEN) as sb:
        yield sb


@pytest.fixture
async def core(sandbox: Sandbox) -> AsyncIterator[AtomaCore]:
    core = AtomaCore(TOKEN, sandbox.url, retry_config=RetryConfig(backoff=_fast_backoff()))
    yield core
    await core.close()
    gc.collect()  # surface ResourceWarnings of this test inside this test


def _fast_backoff():  # type: ignore[no-untyped-def]
    from atoma_core import BackoffStrategy

    return BackoffStrategy(initial_interval=10, max_interval=50, exponent=2.0, max_elapsed_time=5_000)


@asynccontextmanager
async def serve_app(app: web.Application) -> AsyncIterator[str]:
    """Run an aiohttp.web app on a free loopback port; yields its base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server the tests started: SIGTERM by its PID, then SIGKILL if it lingers; reaped."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


CHAT = {"model": "sandbox-model", "messages": [{"role": "user", "content": "hello there"}]}


def acquired_connections(core: AtomaCore) -> int:
    """Connections the core's pool has handed out and not got back (aiohttp keeps no public count)."""
    total = 0
    for entry in core._sessions.values():
        connector = entry.session.connector
        total += len(connector._acquired) if connector is not None else 0  # type: ignore[attr-defined]
    return total


STREAM_CHAT = {**CHAT, "messages": [{"role": "user", "content": "one two three four"}]}


@pytest.fixture(scope="session")
def user_mypy(tmp_path_factory: pytest.TempPathFactory) -> Report:
    """One mypy --strict run, as a user outside the repository would run it, over every README
    Python block, every docs/ one, and the probes of tests/user_code/ (tests/test_readme.py,
    tests/test_types.py)."""
    sources = probe_sources()
    sources.update({snippet.module: snippet.checked_source()[0] for snippet in all_snippets()})
    return run_mypy(tmp_path_factory.mktemp("user-project"), sources)
