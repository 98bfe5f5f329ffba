"""A hedged first token: a copy after a fixed or learned delay, the first answer wins, the loser
is cancelled and its connection closed, the budget is never exceeded, confidential copies are
sealed afresh, and operations that change server state are hedged only on the user's word."""

from __future__ import annotations

import asyncio
import statistics
from typing import Any

import pytest

from atoma_core import AtomaCore, RequestOptions, RetryConfig
from atoma_core.config import Hedge
from atoma_core.errors import InvalidRequestError
from atoma_core.testing import Sandbox, faults
from atoma_funcs import chat_create, chat_create_stream, confidential_chat_create, images_generate

from .conftest import CHAT, TOKEN, _fast_backoff, acquired_connections

QUICK = Hedge(delay=0.05, budget=1.0)


def _core(sandbox: Sandbox, **kwargs: Any) -> AtomaCore:
    kwargs.setdefault("retry_config", RetryConfig(backoff=_fast_backoff()))
    return AtomaCore(TOKEN, sandbox.url, **kwargs)


def pooled_connections(core: AtomaCore) -> int:
    """Idle keep-alive connections in the core's pool (a cancelled loser must not be one)."""
    total = 0
    for entry in core._sessions.values():
        connector = entry.session.connector
        total += sum(len(c) for c in connector._conns.values()) if connector is not None else 0  # type: ignore[attr-defined]
    return total


def hedge_tasks() -> list[asyncio.Task[Any]]:
    """The racers of `_hedge.hedged_attempt` still alive (each runs `hedged_attempt.<locals>.run`)."""
    return [t for t in asyncio.all_tasks() if "hedged_attempt.<locals>.run" in repr(t)]


async def test_a_slow_answer_is_hedged_and_the_loser_closed(sandbox: Sandbox) -> None:
    sandbox.script(faults.delay(2.0))
    async with _core(sandbox, hedge=QUICK) as core:
        res = await chat_create(core, CHAT)
        assert res.ok, res
        meta = res.value.meta
        assert meta is not None and meta.hedged and meta.attempts == 2
        assert len(sandbox.requests) == 2
        slow, fast = sandbox.requests
        assert slow.peer != fast.peer  # two connections
        assert acquired_connections(core) == 0
        assert pooled_connections(core) == 1  # the winner's; the loser's was closed, not pooled
        assert hedge_tasks() == []
        again = await chat_create(core, CHAT)
        assert again.ok and not again.value.meta.hedged  # type: ignore[union-attr]
        assert sandbox.requests[-1].peer == fast.peer
        health = core.health()["hedge"]
        assert (health["calls"], health["hedged"], health["won"]) == (2, 1, 1)


async def test_a_stream_is_hedged_on_its_first_event(sandbox: Sandbox) -> None:
    sandbox.script(faults.delay(2.0))  # headers at once, then only keep-alive comments
    async with _core(sandbox, hedge=QUICK) as core:
        res = await chat_create_stream(core, CHAT)
        assert res.ok, res
        async with res.value as stream:
            whole = await stream.collect()
        assert whole.ok and whole.value.meta is not None and whole.value.meta.hedged
        assert stream.metrics.time_to_first_token is not None and stream.metrics.time_to_first_token < 1.0
        assert len(sandbox.requests) == 2
        assert acquired_connections(core) == 0 and pooled_connections(core) == 1
        assert hedge_tasks() == []


async def test_a_fast_answer_sends_no_copy(sandbox: Sandbox) -> None:
    async with _core(sandbox, hedge=Hedge(delay=1.0, budget=1.0)) as core:
        for _ in range(5):
            assert (await chat_create(core, CHAT)).ok
        assert len(sandbox.requests) == 5
        assert core.health()["hedge"]["hedged"] == 0


async def test_the_budget_is_never_exceeded(sandbox: Sandbox) -> None:
    sandbox.script(faults.delay(0.3, times=None))  # every answer is slow: every call wants a copy
    async with _core(sandbox, hedge=Hedge(delay=0.02, budget=0.1)) as core:
        results = await asyncio.gather(*(chat_create(core, CHAT) for _ in range(40)))
        assert all(r.ok for r in results)
        hedge = core.health()["hedge"]
        assert hedge["calls"] == 40 and hedge["hedged"] == 4 and hedge["refused"] == 36
        assert len(sandbox.requests) == 44
        for _ in range(10):  # and sequentially: each copy only once the share allows it
            await chat_create(core, CHAT)
            hedge = core.health()["hedge"]
            assert hedge["hedged"] <= 0.1 * hedge["calls"]
        assert acquired_connections(core) == 0
        assert hedge_tasks() == []


async def test_p99_time_to_first_token_with_and_without_hedging() -> None:
    """The same scripted slow tail (one answer in ten waits 0.4 s), run with and without a hedge:
    without, p99 is the tail; with, no call waits for it. Numbers are printed (-s to see them)."""
    script = [faults.delay(0.4) if i % 10 == 7 else faults.delay(0.0) for i in range(200)]

    async def run(hedge: Hedge | None) -> list[float]:
        async with Sandbox(token=TOKEN) as sandbox, _core(sandbox, hedge=hedge) as core:
            sandbox.script(*script)
            ttfts = []
            for _ in range(60):
                stream = (await chat_create_stream(core, CHAT)).unwrap()
                async with stream:
                    async for _chunk in stream:
                        pass
                ttft = stream.metrics.time_to_first_token
                assert ttft is not None
                ttfts.append(ttft)
            assert acquired_connections(core) == 0
            return ttfts

    plain = await run(None)
    hedged = await run(Hedge(delay=0.05, budget=0.2))
    p99 = {name: statistics.quantiles(v, n=100)[98] for name, v in (("plain", plain), ("hedged", hedged))}
    print(
        f"p99 time to first token: {p99['plain'] * 1000:.0f} ms plain, {p99['hedged'] * 1000:.0f} ms hedged"
    )
    assert p99["plain"] >= 0.4
    assert p99["hedged"] < 0.3  # no call waited for the slow tail (0.4 s)


async def test_a_learned_delay_follows_the_recent_first_bytes(sandbox: Sandbox) -> None:
    hedge = Hedge(quantile=0.9, min_samples=10, initial_delay=5.0, budget=1.0)
    async with _core(sandbox, hedge=hedge) as core:
        for _ in range(12):
            assert (await chat_create(core, CHAT)).ok
        [latency] = core.health()["latencies"]
        assert latency["samples"] == 12 and latency["server_url"] == sandbox.url
        assert latency["p95"] < 0.5  # learned from fast answers, far below initial_delay
        sandbox.script(faults.delay(3.0))
        res = await chat_create(core, CHAT)  # hedged after about p90, not after 5 s
        assert res.ok and res.value.meta is not None and res.value.meta.hedged
        assert res.value.meta.elapsed < 2.0


async def test_confidential_copies_are_sealed_afresh(sandbox: Sandbox) -> None:
    request = {"model": "sandbox-model", "messages": [{"role": "user", "content": "secret"}]}
    async with _core(sandbox, hedge=QUICK) as core:
        assert (await confidential_chat_create(core, request)).ok  # holds the node lock now
        sandbox.reset()
        sandbox.script(faults.delay(2.0))
        res = await confidential_chat_create(core, request)
        assert res.ok, res
        assert res.value.choices[0].message.content == "You said: secret"
        assert res.value.meta is not None and res.value.meta.hedged
        first, copy = (r.json for r in sandbox.requests)
        for field in ("client_dh_public_key", "nonce", "ciphertext"):
            assert first[field] != copy[field], field
        assert acquired_connections(core) == 0


async def test_operations_that_change_state_are_hedged_only_when_asked(sandbox: Sandbox) -> None:
    request = {"model": "img", "prompt": "a cat"}
    async with _core(sandbox, hedge=Hedge(delay=0.02, budget=1.0)) as core:
        sandbox.script(faults.delay(0.3))
        assert (await images_generate(core, request)).ok
        assert len(sandbox.requests) == 1
        sandbox.script(faults.delay(0.3))
        options = RequestOptions(hedge=Hedge(delay=0.02, budget=1.0, non_idempotent=True))
        res = await images_generate(core, request, options)
        assert res.ok and res.value.meta is not None and res.value.meta.hedged
        assert len(sandbox.requests) == 3


async def test_cancelling_a_hedged_call_cancels_both(sandbox: Sandbox) -> None:
    sandbox.script(faults.delay(5.0), faults.delay(5.0))
    async with _core(sandbox, hedge=QUICK) as core:
        call = asyncio.ensure_future(chat_create(core, CHAT))
        await asyncio.sleep(0.2)
        assert len(sandbox.requests) == 2  # the copy is out too
        assert len(hedge_tasks()) == 2  # (what the check below would see if one were left)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert acquired_connections(core) == 0 and pooled_connections(core) == 0
        assert hedge_tasks() == []


async def test_both_failing_returns_an_error_and_retries(sandbox: Sandbox) -> None:
    sandbox.script(faults.status(503), faults.status(503))
    async with _core(sandbox, hedge=Hedge(delay=0.0, budget=1.0)) as core:
        res = await chat_create(core, CHAT)
        assert res.ok, res  # both copies failed: the retry loop went on
        assert acquired_connections(core) == 0 and hedge_tasks() == []


def test_hedge_config_is_checked() -> None:
    with pytest.raises(InvalidRequestError, match="quantile"):
        Hedge(quantile=1.5)
    with pytest.raises(InvalidRequestError, match="budget"):
        Hedge(budget=-1)
    with pytest.raises(InvalidRequestError, match="hedge"):
        RequestOptions(hedge=0.1)  # type: ignore[arg-type]


async def test_call_hooks_see_one_call_when_a_stream_is_hedged(sandbox: Sandbox) -> None:
    from atoma_core import Hooks

    ends: list[Any] = []
    attempts: list[int] = []
    hooks = Hooks(on_call_end=ends.append, before_request=lambda context: attempts.append(context.attempt))
    sandbox.script(faults.delay(2.0))
    async with _core(sandbox, hedge=QUICK, hooks=hooks) as core:
        stream = (await chat_create_stream(core, CHAT)).unwrap()
        assert ends == []  # the stream's end is the call's end
        async with stream:
            async for _ in stream:
                pass
        assert len(ends) == 1 and ends[0].error is None
        assert sorted(attempts) == [1, 2]  # the first attempt and its copy


async def test_a_copy_can_race_the_next_fallback_region(sandbox: Sandbox) -> None:
    from atoma_core.config import Fallback

    async with Sandbox(token=TOKEN) as region2:
        sandbox.script(faults.delay(2.0))
        hedge = Hedge(delay=0.05, budget=1.0, to="fallback")
        async with _core(sandbox, hedge=hedge, fallbacks=[Fallback(server_url=region2.url)]) as core:
            res = await chat_create(core, CHAT)
            assert res.ok, res
            meta = res.value.meta
            assert meta is not None and meta.hedged and meta.server_url == region2.url
            assert meta.fallbacks == ()  # nothing failed: the next region was simply faster
            assert len(sandbox.requests) == 1 and len(region2.requests) == 1
            latencies = {entry["server_url"] for entry in core.health()["latencies"]}
            assert latencies == {region2.url}
            assert acquired_connections(core) == 0 and hedge_tasks() == []
            # without a next target, the copy goes to the same one
            sandbox.script(faults.delay(2.0))
            res = await chat_create(core, CHAT, {"fallbacks": []})
            assert res.ok and res.value.meta is not None and res.value.meta.server_url == sandbox.url
            assert len(sandbox.requests) == 3


async def test_a_hedged_copy_takes_its_own_place_in_the_rate_limit(sandbox: Sandbox) -> None:
    from atoma_core.limiter import LocalLimiter

    limiter = LocalLimiter(requests=10, per=60)
    sandbox.script(faults.delay(2.0))
    async with _core(sandbox, hedge=QUICK, limiter=limiter) as core:
        res = await chat_create(core, CHAT)
        assert res.ok and res.value.meta is not None and res.value.meta.hedged
        assert len(limiter._window) == len(sandbox.requests) == 2


def test_an_operation_answered_by_another_handle_keeps_its_idempotence() -> None:
    from atoma_funcs._chat import _CREATE

    async def handle(response: Any, ctx: Any) -> None:
        return None

    assert _CREATE.idempotent and _CREATE.answered_by(handle).idempotent
