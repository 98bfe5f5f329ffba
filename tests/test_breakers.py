"""Circuit breakers per (server, model): open after N consecutive retryable failures or a failure
rate; an open one sends nothing (fallback, `CircuitOpenError`, or a wait for the half-open
trial); `core.health()` as plain data; hooks and OpenTelemetry see every change."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import pytest

from atoma_core import AtomaCore, Hooks, RequestOptions, RetryConfig
from atoma_core.config import Breaker, CircuitChange, Fallback
from atoma_core.errors import BadRequestError, CircuitOpenError, InternalServerError, InvalidRequestError
from atoma_core.testing import Sandbox, faults
from atoma_funcs import chat_create, chat_create_stream

from .conftest import CHAT, TOKEN, _fast_backoff, acquired_connections
from .otel_support import Telemetry, telemetry  # noqa: F401 (a fixture)


@pytest.fixture
async def region2() -> AsyncIterator[Sandbox]:
    async with Sandbox(token=TOKEN) as sb:
        yield sb


def _core(sandbox: Sandbox, breaker: Breaker, **kwargs: object) -> AtomaCore:
    kwargs.setdefault("retry_config", RetryConfig(backoff=_fast_backoff()))
    return AtomaCore(TOKEN, sandbox.url, breaker=breaker, **kwargs)  # type: ignore[arg-type]


async def test_opens_after_consecutive_failures_and_then_sends_nothing(sandbox: Sandbox) -> None:
    sandbox.script(faults.status(503, times=None))
    async with _core(sandbox, Breaker(failures=3, cooldown=30.0)) as core:
        first = await chat_create(core, CHAT)  # three attempts (two retries): three failures
        assert not first.ok and isinstance(first.error, InternalServerError)
        assert len(sandbox.requests) == 3
        before = time.time()
        second = await chat_create(core, CHAT)
        assert not second.ok
        error = second.error
        assert isinstance(error, CircuitOpenError)
        assert error.model == "sandbox-model" and error.server_url == sandbox.url
        assert before + 29 < error.until <= time.time() + 30.5
        assert 29 < error.retry_after <= 30
        assert len(sandbox.requests) == 3  # nothing was sent
        health = core.health()
        json.dumps(health)  # plain data
        [breaker] = health["breakers"]
        assert breaker["state"] == "open"
        assert breaker["consecutive_failures"] == 3
        assert breaker["open_until"] == pytest.approx(error.until, abs=0.5)


async def test_an_open_breaker_sends_calls_straight_to_the_fallback(
    sandbox: Sandbox, region2: Sandbox
) -> None:
    sandbox.script(faults.status(503, times=None))
    breaker = Breaker(failures=2, cooldown=30.0)
    async with _core(sandbox, breaker, fallbacks=[Fallback(server_url=region2.url)], retry_config=0) as core:
        for _ in range(10):
            res = await chat_create(core, CHAT)
            assert res.ok, res
            assert res.value.meta is not None and res.value.meta.server_url == region2.url
        assert len(sandbox.requests) == 2  # the breaker stopped hammering the down region
        assert len(region2.requests) == 10
        assert isinstance(res.value.meta.fallbacks[0].error, CircuitOpenError)
        states = {(b["server_url"], b["state"]) for b in core.health()["breakers"]}
        assert states == {(sandbox.url, "open"), (region2.url, "closed")}


async def test_half_open_one_trial_decides(sandbox: Sandbox) -> None:
    changes: list[CircuitChange] = []
    hooks = Hooks(on_circuit_change=changes.append)
    sandbox.script(faults.status(503, times=2))
    async with _core(sandbox, Breaker(failures=2, cooldown=0.2), retry_config=0, hooks=hooks) as core:
        for _ in range(2):
            assert not (await chat_create(core, CHAT)).ok
        assert isinstance((await chat_create(core, CHAT)).error, CircuitOpenError)
        await asyncio.sleep(0.25)
        assert core.health()["breakers"][0]["state"] == "half_open"
        sandbox.script(faults.delay(0.2))  # the trial is slow: calls meanwhile are refused, not sent
        trial = asyncio.ensure_future(chat_create(core, CHAT))
        await asyncio.sleep(0.05)
        others = await asyncio.gather(*(chat_create(core, CHAT) for _ in range(5)))
        assert all(isinstance(r.error, CircuitOpenError) for r in others if not r.ok)
        assert (await trial).ok
        assert len(sandbox.requests) == 3
        assert core.health()["breakers"][0]["state"] == "closed"
        # failure in the half-open trial opens it again
        sandbox.script(faults.status(503, times=2))
        for _ in range(2):
            await chat_create(core, CHAT)
        await asyncio.sleep(0.25)
        sandbox.script(faults.status(503))
        assert isinstance((await chat_create(core, CHAT)).error, InternalServerError)
        assert isinstance((await chat_create(core, CHAT)).error, CircuitOpenError)
    assert [(c.old, c.new) for c in changes] == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "open"),
    ]
    assert changes[0].until is not None and changes[0].failures == 2


async def test_wait_for_the_half_open_trial_when_asked(sandbox: Sandbox) -> None:
    sandbox.script(faults.status(429, times=2))
    async with _core(sandbox, Breaker(failures=2, cooldown=0.3), retry_config=0) as core:
        for _ in range(2):
            await chat_create(core, CHAT)
        started = time.monotonic()
        res = await chat_create(core, CHAT, RequestOptions(on_circuit_open="wait"))
        assert res.ok, res
        assert time.monotonic() - started > 0.2
        # with a deadline shorter than the cool-down, waiting is pointless: it fails at once
        for _ in range(2):
            sandbox.script(faults.status(503))
            await chat_create(core, CHAT)
        res = await chat_create(core, CHAT, RequestOptions(on_circuit_open="wait", timeout_ms=50))
        assert isinstance(res.error, CircuitOpenError)


async def test_a_failure_rate_opens_it(sandbox: Sandbox) -> None:
    async with _core(sandbox, Breaker(failures=100, failure_rate=0.5, window=6), retry_config=0) as core:
        for i in range(6):
            if i % 2:
                sandbox.script(faults.status(502))
            await chat_create(core, CHAT)
        res = await chat_create(core, CHAT)
        assert isinstance(res.error, CircuitOpenError)
        assert core.health()["breakers"][0]["recent_failure_rate"] == 0.5


async def test_wrong_requests_and_successes_never_open_it(sandbox: Sandbox) -> None:
    sandbox.script(faults.status(400, times=5))
    async with _core(sandbox, Breaker(failures=2), retry_config=0) as core:
        for _ in range(5):
            assert isinstance((await chat_create(core, CHAT)).error, BadRequestError)
        assert (await chat_create(core, CHAT)).ok
        [breaker] = core.health()["breakers"]
        assert breaker["state"] == "closed" and breaker["failures"] == 0


async def test_breakers_are_per_model_and_streams_count(sandbox: Sandbox) -> None:
    sandbox.script(
        faults.only_for("sandbox-model", faults.error_event(0, code="SERVICE_UNAVAILABLE", times=None))
    )
    async with _core(sandbox, Breaker(failures=2), retry_config=0) as core:
        for _ in range(2):
            assert not (await chat_create_stream(core, CHAT)).ok
        assert isinstance((await chat_create_stream(core, CHAT)).error, CircuitOpenError)
        other = await chat_create(core, {**CHAT, "model": "other"})
        assert other.ok
        assert acquired_connections(core) == 0


async def test_opentelemetry_sees_state_changes(sandbox: Sandbox, telemetry: Telemetry) -> None:  # noqa: F811
    sandbox.script(faults.status(503, times=2))
    async with _core(sandbox, Breaker(failures=2), retry_config=0) as core:
        with telemetry.instrument(core):
            for _ in range(3):
                await chat_create(core, CHAT)
    points = telemetry.points("atoma.circuit.changes")
    assert [(p.attributes["atoma.circuit.state"], p.value) for p in points] == [("open", 1)]
    assert points[0].attributes["server.address"] == sandbox.url


def test_health_without_anything_configured() -> None:
    health = AtomaCore("t", "http://127.0.0.1:9").health()
    assert health["breakers"] == [] and health["latencies"] == []
    assert health["hedge"]["hedged"] == 0


def test_breaker_config_is_checked() -> None:
    with pytest.raises(InvalidRequestError, match=r"Breaker\.failures"):
        Breaker(failures=0)
    with pytest.raises(InvalidRequestError, match="failure_rate"):
        Breaker(failure_rate=1.5)
    with pytest.raises(InvalidRequestError, match="on_open"):
        Breaker(on_open="later")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="breaker"):
        AtomaCore("t", breaker=3)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="on_circuit_open"):
        RequestOptions(on_circuit_open="never")  # type: ignore[arg-type]
