"""batch_run against the sandbox: thousands of items with 429s and 5xx mixed in, rate limits and
the in-flight bound checked on the server's clock, lazy input with flat memory; the throttle's
arithmetic on a fake clock. The `atoma batch` command is in test_batch_cli.py."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from atoma_core import AtomaCore, BackoffStrategy, Ok, RequestOptions, RetryConfig, errors
from atoma_core.testing import Sandbox, faults
from atoma_funcs import BatchResult, batch_run
from atoma_funcs._batch import check_item
from atoma_funcs._batch_ops import OPERATIONS, BatchOperation
from atoma_funcs._throttle import Throttle, TokenBucket

from .conftest import acquired_connections
from .test_imports import NEVER, STREAM_ONLY, imported_modules

CHAT_URL = "/v1/chat/completions"
JITTER = 0.1  # seconds a request may take from the throttle to the server (a new connection, a busy CPU)


def chat_item(i: int, **body: Any) -> dict[str, Any]:
    messages = [{"role": "user", "content": f"item {i}"}]
    return {
        "custom_id": f"id-{i}",
        "method": "POST",
        "url": CHAT_URL,
        "body": {"model": "m", "messages": messages, **body},
    }


async def collect(results: AsyncIterator[BatchResult]) -> list[BatchResult]:
    return [result async for result in results]


# ------------------------------------------------------------------ a big job with faults


async def test_thousands_of_items_with_429s_and_5xx_each_id_once(sandbox: Sandbox, core: AtomaCore) -> None:
    n = 2000
    script = []
    for i in range(n):
        if i % 250 == 125:
            script.append(faults.status(429, headers={"Retry-After": "0.4"}))
        elif i % 50 == 20:
            script.append(faults.status(503))
        else:
            script.append(faults.delay(0))  # no fault: a normal answer
    sandbox.script(*script)
    # The script is served in arrival order, so a retry may land on another fault: the budget
    # covers a few in a row. Every fault is still served once (the counts below).
    retries = RequestOptions(retries=RetryConfig(backoff=core.retry_config.backoff, max_retries=6))
    items = (chat_item(i) for i in range(n))
    results = await collect(batch_run(core, items, concurrency=32, options=retries))

    assert sorted(r.custom_id for r in results) == sorted(f"id-{i}" for i in range(n))
    assert all(isinstance(r.result, Ok) for r in results), [r for r in results if not r.result.ok][:3]
    assert all(
        r.result.value.choices[0].message.content == f"You said: item {r.custom_id[3:]}" for r in results
    )
    rate_limited = [i for i, fault in enumerate(script) if fault.status == 429]
    failed = [i for i, fault in enumerate(script) if fault.status in (429, 503)]
    assert len(sandbox.requests) == n + len(failed)  # each fault cost exactly one more attempt
    assert sum(r.attempts for r in results) == n + len(failed)
    # Every worker honoured each Retry-After, not only the one that got it: nothing arrived
    # from 0.15 s after a 429 (time for the requests already on their way) to its end.
    arrivals = [r.received_at for r in sandbox.requests]
    for i in rate_limited:
        t = arrivals[i]
        inside = [a for a in arrivals if t + 0.15 < a < t + 0.38]
        assert not inside, (i, [round(a - t, 3) for a in inside])


async def test_rate_limits_hold_on_the_server_clock(sandbox: Sandbox, core: AtomaCore) -> None:
    rpm, n = 3000, 150  # 50 a second; the bucket holds one second's worth
    results = await collect(
        batch_run(core, (chat_item(i) for i in range(n)), concurrency=16, requests_per_minute=rpm)
    )
    assert len(results) == n and all(r.result.ok for r in results)
    times = sorted(r.received_at for r in sandbox.requests)
    rate, burst = rpm / 60, rpm / 60
    # A token bucket's promise: any run of k consecutive requests spans at least (k - burst) / rate,
    # give or take how late a request may reach the server after it was let go (JITTER).
    for i in range(n):
        for j in range(i + 1, n):
            assert j - i + 1 <= burst + rate * (times[j] - times[i] + JITTER) + 1, (i, j)


async def test_token_limit_holds_on_the_server_clock(sandbox: Sandbox, core: AtomaCore) -> None:
    tpm, n = 60_000, 250  # 1,000 tokens a second
    items = (chat_item(i, max_tokens=8) for i in range(n))
    results = await collect(batch_run(core, items, concurrency=16, tokens_per_minute=tpm))
    assert len(results) == n and all(r.result.ok for r in results)
    used = {r.custom_id: r.result.value.usage.total_tokens for r in results}
    arrivals = sorted(sandbox.requests, key=lambda r: r.received_at)
    tokens = [used["id-" + r.json["messages"][0]["content"].split()[1]] for r in arrivals]
    times = [r.received_at for r in arrivals]
    rate = burst = tpm / 60
    for i in range(0, n, 5):
        total = 0
        for j in range(i, n):
            total += tokens[j]
            assert total <= burst + rate * (times[j] - times[i] + JITTER) + max(tokens), (i, j)


async def test_in_flight_bound_holds(sandbox: Sandbox, core: AtomaCore) -> None:
    sandbox.script(faults.delay(0.05, times=None))
    results = await collect(batch_run(core, (chat_item(i) for i in range(120)), concurrency=8))
    assert len(results) == 120
    assert sandbox.max_concurrent == 8  # reached, never passed


# ------------------------------------------------------------------ retries and failures


async def test_a_5xx_is_retried_through_the_throttle(sandbox: Sandbox, core: AtomaCore) -> None:
    sandbox.script(faults.status(503), faults.status(502))
    [result] = await collect(batch_run(core, [chat_item(1)], concurrency=1))
    assert result.result.ok and result.attempts == 3


async def test_time_queued_in_the_throttle_does_not_eat_the_retry_budget(sandbox: Sandbox, core: AtomaCore) -> None:
    sandbox.script(faults.delay(0), faults.delay(0), faults.delay(0), faults.status(503))
    backoff = BackoffStrategy(initial_interval=10, max_interval=20, max_elapsed_time=300)
    options = RequestOptions(retries=RetryConfig(backoff=backoff))
    items = [chat_item(i) for i in range(4)]
    results = await collect(batch_run(core, items, concurrency=4, requests_per_minute=120, options=options))
    # 2 a second: the 4th request waited about a second for its turn, then got the 503.
    assert all(r.result.ok for r in results) and sorted(r.attempts for r in results) == [1, 1, 1, 2]


async def test_with_retries_off_failures_are_results(sandbox: Sandbox, core: AtomaCore) -> None:
    sandbox.script(faults.status(503), faults.status(429, headers={"Retry-After": "0"}))
    options = RequestOptions(retries=RetryConfig.none())
    results = await collect(batch_run(core, [chat_item(1), chat_item(2)], concurrency=1, options=options))
    assert [(type(r.result.error), r.attempts) for r in results] == [
        (errors.InternalServerError, 1),
        (errors.RateLimitError, 1),
    ]


async def test_a_429_asking_for_too_long_a_pause_fails_the_item(sandbox: Sandbox, core: AtomaCore) -> None:
    sandbox.script(faults.status(429, headers={"Retry-After": "3600"}))
    [result] = await collect(batch_run(core, [chat_item(1)], concurrency=1))
    assert isinstance(result.result.error, errors.RateLimitError) and result.attempts == 1


async def test_a_server_always_at_429_gives_up_after_a_bounded_number(
    sandbox: Sandbox, core: AtomaCore
) -> None:
    sandbox.script(faults.status(429, headers={"retry-after-ms": "1"}, times=None))
    [result] = await collect(batch_run(core, [chat_item(1)], concurrency=2))
    assert isinstance(result.result.error, errors.RateLimitError)
    assert result.attempts == result.result.error.attempts == 3  # max_retries=2 (issue 26)


async def test_bad_items_are_results_not_exceptions(sandbox: Sandbox, core: AtomaCore) -> None:
    items: list[Any] = [
        {"url": CHAT_URL, "body": {}},
        {"custom_id": "a", "url": "/v1/images/generations", "body": {}},
        {"custom_id": "b", "url": CHAT_URL, "body": {"model": "m"}},  # no messages
        "not a dict",
        chat_item(1),
    ]
    results = {r.custom_id: r for r in await collect(batch_run(core, items, concurrency=2))}
    assert results["id-1"].result.ok
    assert isinstance(results["a"].result.error, errors.InvalidRequestError)
    assert "unknown url" in str(results["a"].result.error) and results["a"].attempts == 0
    assert "messages" in str(results["b"].result.error)
    assert len(sandbox.requests) == 1


@pytest.mark.parametrize(
    ("item", "why"),
    [
        ({"url": CHAT_URL, "body": {}}, "no custom_id"),
        ({"custom_id": "", "url": CHAT_URL, "body": {}}, "no custom_id"),
        ({"custom_id": "x", "method": "GET", "url": CHAT_URL, "body": {}}, "method must be POST"),
        ({"custom_id": "x", "url": "/v1/nope", "body": {}}, "unknown url '/v1/nope'"),
        ({"custom_id": "x", "url": CHAT_URL, "body": []}, "body must be a JSON object"),
        ([1, 2], "not a JSON object"),
    ],
)
def test_check_item_says_why(item: Any, why: str) -> None:
    with pytest.raises(errors.InvalidRequestError, match=why):
        check_item(item)


@pytest.mark.parametrize(
    "kwargs", [{"concurrency": 0}, {"requests_per_minute": -1}, {"tokens_per_minute": float("nan")}]
)
async def test_bad_limits_raise(core: AtomaCore, kwargs: dict[str, Any]) -> None:
    with pytest.raises(errors.InvalidRequestError):
        await collect(batch_run(core, [], **kwargs))


async def test_an_input_that_raises_finishes_what_it_gave_then_raises(
    sandbox: Sandbox, core: AtomaCore
) -> None:
    def items() -> Iterator[dict[str, Any]]:
        yield chat_item(1)
        yield chat_item(2)
        raise OSError("disk gone")

    seen = []
    with pytest.raises(OSError, match="disk gone"):
        async for result in batch_run(core, items(), concurrency=4):
            seen.append(result.custom_id)
    assert sorted(seen) == ["id-1", "id-2"]


async def test_async_iterable_input(sandbox: Sandbox, core: AtomaCore) -> None:
    async def items() -> AsyncIterator[dict[str, Any]]:
        for i in range(20):
            await asyncio.sleep(0)
            yield chat_item(i)

    results = await collect(batch_run(core, items(), concurrency=4))
    assert sorted(int(r.custom_id[3:]) for r in results) == list(range(20))


async def test_leaving_early_cancels_the_rest_and_leaks_nothing(sandbox: Sandbox, core: AtomaCore) -> None:
    sandbox.script(faults.delay(0.05, times=None))
    async with contextlib.aclosing(
        batch_run(core, (chat_item(i) for i in range(1000)), concurrency=8)
    ) as results:
        async for _ in results:
            break
    assert acquired_connections(core) == 0
    await asyncio.sleep(0.1)  # the sandbox sees the cancelled requests go
    assert len(sandbox.requests) < 30
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and "work" in repr(t)] == []


async def test_cancelling_the_consumer_propagates(sandbox: Sandbox, core: AtomaCore) -> None:
    sandbox.script(faults.hang(times=None))
    task = asyncio.ensure_future(collect(batch_run(core, (chat_item(i) for i in range(10)), concurrency=4)))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert acquired_connections(core) == 0


# ------------------------------------------------------------------ lazy input, flat memory


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def test_a_large_input_is_read_lazily_with_flat_memory() -> None:
    """100,000 items of 4 KB each (400 MB if held) through the pipeline. The operation answers
    in-process, so the queues, the workers and the throttle are what is measured, not HTTP."""
    taken = 0
    yielded = 0
    ahead = 0

    def items() -> Iterator[dict[str, Any]]:
        nonlocal taken
        for i in range(100_000):
            taken += 1
            yield {"custom_id": f"id-{i}", "url": "/local", "body": {"text": f"{i:08d}" + "x" * 4096}}

    async def echo(core: AtomaCore, body: Any, options: Any) -> Ok[int]:
        return Ok(len(body["text"]))

    operations = {**OPERATIONS, "/local": BatchOperation(echo, lambda body: 1)}
    core = AtomaCore("sk-unused", "http://127.0.0.1:9")  # never called: the operation is local
    before = _rss()
    peak = before
    async for result in batch_run(core, items(), concurrency=16, operations=operations):
        yielded += 1
        ahead = max(ahead, taken - yielded)
        if yielded % 10_000 == 0:
            peak = max(peak, _rss())
        assert result.result.ok
    assert yielded == 100_000
    assert ahead <= 3 * 16 + 2  # the input queue, the workers, the results queue
    assert peak - before < 40 * 2**20, (peak - before) / 2**20


# ------------------------------------------------------------------ the throttle, on a fake clock


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_goes_into_debt_for_a_big_request_and_after_a_correction() -> None:
    bucket = TokenBucket(per_minute=600, burst_seconds=1.0, now=0.0)  # 10 a second, holds 10
    assert bucket.capacity == 10 and bucket.wait(25, 1.0) == 0.0  # a full bucket lets it go
    bucket.adjust(-25)
    assert bucket.level == -15
    bucket.refill(1.0, 1.0)
    assert bucket.level == -5 and bucket.wait(1, 1.0) == pytest.approx(0.6)
    bucket.adjust(+100)  # the real usage was lower: given back, but never above the capacity
    assert bucket.level == 10


async def test_throttle_settles_tokens_with_the_real_usage() -> None:
    clock = FakeClock()
    throttle = Throttle(4, tokens_per_minute=6000, clock=clock)  # 100 a second
    await throttle.acquire(80)
    assert throttle.tokens is not None and throttle.tokens.level == 20
    throttle.release()
    throttle.settle(80, 30)  # used 30 of the 80 estimated
    assert throttle.tokens.level == 70
    throttle.settle(10, 200)  # used far more than estimated: owed by the next requests
    assert throttle.tokens.level == -120


async def test_a_429_halves_the_job_once_per_round_and_it_recovers() -> None:
    clock = FakeClock()
    throttle = Throttle(32, requests_per_minute=600, clock=clock)
    sent = await throttle.acquire(1)
    throttle.release()
    assert throttle.limit(clock.now) == 32 and throttle.factor(clock.now) == 1.0
    clock.now += 0.5
    throttle.rate_limited(sent, pause=2.0)
    assert throttle.paused_until == clock.now + 2.0
    assert throttle.limit(clock.now) == 16
    throttle.rate_limited(sent, pause=1.0)  # another 429 from the same round: no second cut
    assert throttle.limit(clock.now) == 16 and throttle.paused_until == clock.now + 2.0
    assert throttle.requests is not None and throttle.requests.level <= 0  # no burst after the pause
    clock.now += 2.0 + 2.5  # the pause, then 2.5 s climbing at 0.1 a second
    assert throttle.factor(clock.now) == pytest.approx(0.75) and throttle.limit(clock.now) == 24
    clock.now += 10
    assert throttle.limit(clock.now) == 32
    later = clock.now
    throttle.rate_limited(later, pause=0.0)  # a request sent after the cut: cuts again
    assert throttle.limit(clock.now) == 16


async def test_throttle_waits_for_a_slot() -> None:
    throttle = Throttle(2)
    await throttle.acquire(1)
    await throttle.acquire(1)
    third = asyncio.ensure_future(throttle.acquire(1))
    await asyncio.sleep(0.01)
    assert not third.done()
    throttle.release()
    await asyncio.wait_for(third, 1)
    assert throttle.in_flight == 2


def test_importing_batch_run_loads_no_bar_no_server_no_stream_code() -> None:
    modules = imported_modules("from atoma_funcs import batch_run")
    assert "atoma_funcs._batch_ops" in modules and "atoma_funcs._throttle" in modules
    assert not modules & (STREAM_ONLY | NEVER | {"tqdm", "atoma_funcs._batch_progress"})
    assert "atoma_funcs._throttle" not in imported_modules("from atoma_funcs import chat_create")
