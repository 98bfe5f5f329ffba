"""Retry policy: which failures retry, how long we wait (backoff, Retry-After, retry-after-ms),
x-should-retry, budgets, per-call overrides and the DEBUG trail."""

from __future__ import annotations

import logging
import time
from email.utils import formatdate

import pytest
from multidict import CIMultiDict

from atoma_core import AtomaCore, BackoffStrategy, Err, RequestOptions, RetryConfig, errors
from atoma_core._retries import RetrySchedule, server_retry_after, status_is_retryable
from atoma_core.testing import Sandbox, faults
from atoma_funcs import chat_create, chat_create_stream

from .conftest import CHAT, TOKEN, free_port

FAST = RetryConfig(backoff=BackoffStrategy(10, 50, 2.0, 5_000))


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "2"}, 2.0),
        ({"Retry-After": "0.5"}, 0.5),
        ({"retry-after-ms": "250", "Retry-After": "9"}, 0.25),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "-3"}, 0.0),
        ({}, None),
    ],
)
def test_server_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert server_retry_after(CIMultiDict(headers)) == expected


def test_retry_after_http_date() -> None:
    wait = server_retry_after(CIMultiDict({"Retry-After": formatdate(time.time() + 30, usegmt=True)}))
    assert wait is not None and 28 <= wait <= 31


def test_x_should_retry_overrides_the_status_list() -> None:
    config = RetryConfig()
    assert status_is_retryable(config, 503, CIMultiDict())
    assert not status_is_retryable(config, 503, CIMultiDict({"x-should-retry": "false"}))
    assert status_is_retryable(config, 400, CIMultiDict({"x-should-retry": "true"}))
    assert not status_is_retryable(config, 400, CIMultiDict())


def test_schedule_is_exponential_capped_and_budgeted() -> None:
    config = RetryConfig(max_retries=10, backoff=BackoffStrategy(500, 8_000, 2.0, 60_000))
    schedule = RetrySchedule(config, started=0.0)
    waits = [schedule.next_wait(0.0, None, None) for _ in range(6)]
    caps = [0.5, 1, 2, 4, 8, 8]
    assert all(w is not None and 0 <= w <= cap for w, cap in zip(waits, caps))
    assert schedule.next_wait(59.99, 5.0, None) is None  # past the elapsed budget
    assert RetrySchedule(config, 0.0).next_wait(0.0, 61.0, None) is None  # Retry-After over the cap
    assert RetrySchedule(config, 0.0).next_wait(0.0, 3.0, deadline=2.0) is None  # past the deadline
    assert RetrySchedule(RetryConfig(max_retries=1), 0.0).next_wait(0.0, 0.1, None) == 0.1


async def test_429_with_retry_after_then_200(sandbox: Sandbox) -> None:
    sandbox.script(faults.status(429, headers={"Retry-After": "0.3"}))
    async with AtomaCore(TOKEN, sandbox.url) as core:
        started = time.monotonic()
        res = await chat_create(core, CHAT)
        elapsed = time.monotonic() - started
    assert res.ok and res.value.meta is not None and res.value.meta.attempts == 2
    assert 0.3 <= elapsed < 2.0


async def test_retry_after_ms_is_preferred(sandbox: Sandbox) -> None:
    sandbox.script(faults.status(503, headers={"retry-after-ms": "50", "Retry-After": "30"}))
    async with AtomaCore(TOKEN, sandbox.url) as core:
        started = time.monotonic()
        assert (await chat_create(core, CHAT)).ok
        assert time.monotonic() - started < 2.0


async def test_retry_after_beyond_the_cap_fails_fast(sandbox: Sandbox) -> None:
    sandbox.script(faults.status(429, headers={"Retry-After": "3600"}))
    async with AtomaCore(TOKEN, sandbox.url) as core:
        started = time.monotonic()
        res = await chat_create(core, CHAT)
    assert isinstance(res, Err) and isinstance(res.error, errors.RateLimitError)
    assert res.error.attempts == 1 and time.monotonic() - started < 1.0


async def test_503_forever_stops_after_two_retries(sandbox: Sandbox) -> None:
    sandbox.script(faults.status(503, times=None))
    async with AtomaCore(TOKEN, sandbox.url, retry_config=FAST) as core:
        for call in (chat_create, chat_create_stream):
            res = await call(core, CHAT)
            assert isinstance(res, Err) and isinstance(res.error, errors.InternalServerError)
            assert res.error.attempts == 3
    assert len(sandbox.requests) == 6


async def test_elapsed_budget_bounds_the_retries(sandbox: Sandbox) -> None:
    sandbox.script(faults.status(503, headers={"Retry-After": "0.2"}, times=None))
    config = RetryConfig(max_retries=100, backoff=BackoffStrategy(10, 50, 2.0, max_elapsed_time=700))
    async with AtomaCore(TOKEN, sandbox.url, retry_config=config) as core:
        started = time.monotonic()
        res = await chat_create(core, CHAT)
        elapsed = time.monotonic() - started
    assert isinstance(res, Err) and res.error.attempts in (3, 4)
    assert elapsed < 1.0


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 422])
async def test_client_errors_are_not_retried(sandbox: Sandbox, status: int) -> None:
    sandbox.script(faults.status(status, times=None))
    async with AtomaCore(TOKEN, sandbox.url, retry_config=FAST) as core:
        res = await chat_create(core, CHAT)
    assert isinstance(res, Err) and res.error.attempts == 1
    assert len(sandbox.requests) == 1


async def test_x_should_retry_over_http(sandbox: Sandbox) -> None:
    sandbox.script(
        faults.status(503, headers={"x-should-retry": "false"}),
        faults.status(409, headers={"x-should-retry": "true"}),
    )
    async with AtomaCore(TOKEN, sandbox.url, retry_config=FAST) as core:
        first = await chat_create(core, CHAT)
        second = await chat_create(core, CHAT)
    assert isinstance(first, Err) and first.error.attempts == 1
    assert second.ok and second.value.meta is not None and second.value.meta.attempts == 2


async def test_connection_errors_retry_unless_disabled() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    async with AtomaCore(TOKEN, url, retry_config=FAST) as core:
        res = await chat_create(core, CHAT)
        assert isinstance(res, Err) and type(res.error) is errors.APIConnectionError
        assert res.error.attempts == 3
        off = RetryConfig(retry_connection_errors=False, backoff=FAST.backoff)
        res = await chat_create(core, CHAT, RequestOptions(retries=off))
        assert isinstance(res, Err) and res.error.attempts == 1


async def test_retries_none_and_per_call_override(sandbox: Sandbox) -> None:
    async with AtomaCore(TOKEN, sandbox.url, retry_config=RetryConfig.none()) as core:
        sandbox.script(faults.status(503))
        res = await chat_create(core, CHAT)
        assert isinstance(res, Err) and res.error.attempts == 1
        sandbox.script(faults.status(503))
        assert (await chat_create(core, CHAT, RequestOptions(retries=FAST))).ok


async def test_every_retry_is_logged(sandbox: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="atoma")
    sandbox.script(faults.status(429, headers={"Retry-After": "0.01"}), faults.status(502))
    async with AtomaCore(TOKEN, sandbox.url, retry_config=FAST) as core:
        assert (await chat_create(core, CHAT)).ok
    retries = [r.getMessage() for r in caplog.records if " retry " in r.getMessage()]
    assert len(retries) == 2
    assert "retry 1 in 0.010 s after attempt 1: RateLimitError 429 TOO_MANY_REQUESTS" in retries[0]
    assert "after attempt 2: InternalServerError 502" in retries[1]
    assert not any("Too many requests" in r.getMessage() for r in caplog.records)  # no server text
