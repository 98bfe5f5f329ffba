"""The lock step of confidential compute (atoma_funcs/_node_lock.py) over loopback HTTP: a refused
node key is never cached (#26 item 1), concurrent first calls share one lock request (#26 item
13), and a caller that leaves, or whose deadline comes first, leaves the shared lock to others."""

from __future__ import annotations

import asyncio
import base64
import time

import pytest

from atoma_core import AtomaCore, RequestOptions, errors
from atoma_core.testing import Sandbox, faults
from atoma_funcs import confidential_chat_create

from .test_node_keys import REQUEST, locks, sealed_posts


async def test_a_refused_node_key_does_not_poison_the_lock_cache(core: AtomaCore, sandbox: Sandbox) -> None:
    sandbox.script(faults.substitute_key(base64.b64encode(bytes(32)).decode()))  # a low-order point
    res = await confidential_chat_create(core, REQUEST)
    assert isinstance(res.error, errors.ConfidentialComputeError) and res.error.reason == "key"
    assert sealed_posts(sandbox) == 0
    assert (await confidential_chat_create(core, REQUEST)).ok  # a new lock, a good key
    assert locks(sandbox) == 2


async def test_concurrent_first_calls_share_one_lock(core: AtomaCore, sandbox: Sandbox) -> None:
    sandbox.script(faults.delay(0.2))  # the lock is in flight while the others arrive
    results = await asyncio.gather(*(confidential_chat_create(core, REQUEST) for _ in range(20)))
    assert all(r.ok for r in results) and locks(sandbox) == 1 and sealed_posts(sandbox) == 20


async def test_a_cancelled_first_caller_leaves_the_shared_lock_to_the_others(
    core: AtomaCore, sandbox: Sandbox
) -> None:
    sandbox.script(faults.delay(0.3))
    first = asyncio.ensure_future(confidential_chat_create(core, REQUEST))
    await asyncio.sleep(0.05)
    second = asyncio.ensure_future(confidential_chat_create(core, REQUEST))
    await asyncio.sleep(0.05)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert (await second).ok and locks(sandbox) == 1


async def test_a_waiter_on_the_shared_lock_keeps_its_own_deadline(core: AtomaCore, sandbox: Sandbox) -> None:
    sandbox.script(faults.delay(1.5))
    first = asyncio.ensure_future(confidential_chat_create(core, REQUEST))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    res = await confidential_chat_create(core, REQUEST, RequestOptions(timeout_ms=200))
    assert isinstance(res.error, errors.RequestTimeoutError) and res.error.phase == "total"
    assert time.monotonic() - started < 1.0
    assert (await first).ok and locks(sandbox) == 1


async def test_a_short_deadline_first_caller_does_not_fail_the_shared_lock_for_others(
    core: AtomaCore, sandbox: Sandbox
) -> None:
    sandbox.script(faults.delay(0.4))  # the lock answers after the first caller's deadline
    first = asyncio.ensure_future(confidential_chat_create(core, REQUEST, RequestOptions(timeout_ms=150)))
    await asyncio.sleep(0.05)
    second = await confidential_chat_create(core, REQUEST)  # no deadline of its own
    assert isinstance((await first).error, errors.RequestTimeoutError)
    assert second.ok and locks(sandbox) == 1
