"""`core.warm()` / `sdk.warm()`: imports, name resolution and one pooled connection ahead of the
first request, which then reuses it; a dead or silent server is a typed error, not a hang."""

from __future__ import annotations

import subprocess
import sys

import pytest

from atoma_core import AtomaCore, Err, Ok, errors
from atoma_core.testing import Sandbox, faults
from atoma_funcs import AtomaSDK, chat_create

from .conftest import CHAT, TOKEN, acquired_connections, free_port


async def test_the_first_request_reuses_the_warm_connection(core: AtomaCore, sandbox: Sandbox) -> None:
    assert await core.warm() == Ok(None)
    assert acquired_connections(core) == 0  # back in the pool
    for _ in range(3):
        assert (await chat_create(core, CHAT)).ok
    assert [(r.method, r.path) for r in sandbox.requests] == [("GET", "/health")] + [
        ("POST", "/v1/chat/completions")
    ] * 3
    assert len({r.peer for r in sandbox.requests}) == 1  # the sandbox saw one connection
    assert "Authorization" not in sandbox.requests[0].headers  # warm-up sends no token


async def test_any_status_warms(core: AtomaCore, sandbox: Sandbox) -> None:
    sandbox.script(faults.status(404))  # a server without /health still gets connected to
    assert await core.warm() == Ok(None)
    assert (await chat_create(core, CHAT)).ok
    assert sandbox.requests[0].peer == sandbox.requests[1].peer


async def test_a_dead_server_is_a_typed_error() -> None:
    async with AtomaCore(TOKEN, f"http://127.0.0.1:{free_port()}") as core:
        res = await core.warm()
    assert isinstance(res, Err) and isinstance(res.error, errors.APIConnectionError)


async def test_a_silent_server_times_out(core: AtomaCore, sandbox: Sandbox) -> None:
    sandbox.script(faults.hang())
    res = await core.warm(timeout=0.2)
    assert isinstance(res, Err) and isinstance(res.error, errors.RequestTimeoutError)
    assert res.error.phase == "total" and res.error.timeout == 0.2
    assert acquired_connections(core) == 0


async def test_the_bundled_client_raises(sandbox: Sandbox) -> None:
    async with AtomaSDK(TOKEN, sandbox.url) as sdk:
        await sdk.warm()
    async with AtomaSDK(TOKEN, f"http://127.0.0.1:{free_port()}") as dead:
        with pytest.raises(errors.APIConnectionError):
            await dead.warm()


WARM_THEN_CALL = """
import asyncio, sys
from atoma_core.testing import Sandbox
from atoma_funcs import AtomaSDK

async def main() -> None:
    async with Sandbox() as sandbox, AtomaSDK(server_url=sandbox.url) as sdk:
        if sys.argv[1] == "warm":
            await sdk.warm()
        before = set(sys.modules)
        await sdk.chat.create(model="m", messages=[{"role": "user", "content": "hi"}])
        print(sorted(m for m in set(sys.modules) - before if m.startswith(("aiohttp", "atoma"))))

asyncio.run(main())
"""


@pytest.mark.parametrize(("mode", "first_call_imports"), [("cold", True), ("warm", False)])
def test_warm_moves_the_first_calls_imports_ahead(mode: str, first_call_imports: bool) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", WARM_THEN_CALL, mode], capture_output=True, text=True, check=True, timeout=60
    )
    imported = proc.stdout.strip()
    assert ("atoma_core._request" in imported) is first_call_imports, imported
    if not first_call_imports:
        assert imported == "[]"
