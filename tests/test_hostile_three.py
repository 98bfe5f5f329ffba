"""Hostile round three (issue 26): deadlines that hooks and re-locks escaped, batch jobs fed
`None` or a 429 for ever, deeply nested JSON, the sync face inside a running loop, tracing that
raises, base64 embeddings. Each over real loopback servers (the sandbox or an aiohttp.web app).
The `atoma batch` files are in test_batch_cli.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from atoma_core import AtomaCore, BackoffStrategy, RequestOptions, RetryConfig, errors
from atoma_core.testing import Sandbox, faults
from atoma_funcs import BatchResult, batch_run

from .conftest import TOKEN

CHAT_URL = "/v1/chat/completions"


def chat_item(i: int) -> dict[str, Any]:
    body = {"model": "m", "messages": [{"role": "user", "content": f"item {i}"}]}
    return {"custom_id": f"id-{i}", "url": CHAT_URL, "body": body}


async def collect(results: AsyncIterator[BatchResult]) -> list[BatchResult]:
    return [result async for result in results]


# ------------------------------------------------------------------ 7. a None item


@pytest.mark.parametrize("concurrency", [1, 4])
async def test_a_none_item_is_its_own_err_not_the_end_of_the_queue(
    sandbox: Sandbox, core: AtomaCore, concurrency: int
) -> None:
    """None was the queue's end marker: one worker stopped at it (concurrency 1 hung, more
    workers dropped it and every item after it that the stopped worker would have taken)."""
    items: list[Any] = [chat_item(1), None, chat_item(2), None, chat_item(3)]
    results = await asyncio.wait_for(collect(batch_run(core, items, concurrency=concurrency)), 10)
    assert len(results) == 5
    ok = sorted(r.custom_id for r in results if r.result.ok)
    assert ok == ["id-1", "id-2", "id-3"]
    bad = [r for r in results if not r.result.ok]
    assert len(bad) == 2
    for result in bad:
        assert isinstance(result.result.error, errors.InvalidRequestError)
        assert "NoneType" in str(result.result.error) and result.attempts == 0


# ------------------------------------------------------------------ 14. a 429 for ever in a batch job


@pytest.mark.parametrize("max_retries", [0, 1, 4])
async def test_a_429_for_ever_honours_max_retries_per_item(sandbox: Sandbox, max_retries: int) -> None:
    sandbox.script(faults.status(429, headers={"retry-after-ms": "1"}, times=None))
    retries = RetryConfig(max_retries=max_retries)
    async with AtomaCore(TOKEN, sandbox.url) as core:
        results = await asyncio.wait_for(
            collect(
                batch_run(core, [chat_item(i) for i in range(3)], options=RequestOptions(retries=retries))
            ),
            20,
        )
    assert len(results) == 3
    for result in results:
        assert isinstance(result.result.error, errors.RateLimitError)
        assert result.attempts == max_retries + 1
    assert len(sandbox.requests) == 3 * (max_retries + 1)


async def test_a_429_for_ever_ends_the_job_within_the_retry_budget(sandbox: Sandbox) -> None:
    """Without Retry-After every 429 pauses the job 1 s: 5 items took 50 s (11 tries each,
    whatever the settings). With a 1.5 s elapsed budget the job ends in about that."""
    sandbox.script(faults.status(429, times=None))
    retries = RetryConfig(max_retries=100, backoff=BackoffStrategy(max_elapsed_time=1_500))
    async with AtomaCore(TOKEN, sandbox.url) as core:
        started = time.monotonic()
        results = await asyncio.wait_for(
            collect(
                batch_run(core, [chat_item(i) for i in range(5)], options=RequestOptions(retries=retries))
            ),
            15,
        )
        elapsed = time.monotonic() - started
    assert all(isinstance(r.result.error, errors.RateLimitError) for r in results) and len(results) == 5
    assert all(r.attempts <= 3 for r in results)  # a 1 s pause per 429, 1.5 s of budget
    assert elapsed < 6  # generous for a loaded machine; it was 50 s
