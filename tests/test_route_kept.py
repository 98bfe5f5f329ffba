"""What a routed call that needs no choice reads instead of working out (`_route`): the core's
policy, a lane per operation, its own target per (server, model), a breaker's success counted
with one add while it is quiet. Everything it keeps must stay right: counts, the failure-rate
window, meta, targets per model and server, and the kept tables stay bounded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from atoma_core import AtomaCore, RequestOptions
from atoma_core._request import call
from atoma_core._route import LANES, OPTION_POLICIES
from atoma_core.config import Breaker, Fallback
from atoma_core.errors import CircuitOpenError, InternalServerError
from atoma_core.testing import Sandbox, faults
from atoma_funcs import chat_create, chat_create_stream
from atoma_funcs._chat import _CREATE

from .conftest import CHAT, TOKEN, acquired_connections


@pytest.fixture
async def region2() -> AsyncIterator[Sandbox]:
    async with Sandbox(token=TOKEN) as sb:
        yield sb


def _core(sandbox: Sandbox, **kwargs: object) -> AtomaCore:
    return AtomaCore(TOKEN, sandbox.url, retry_config=0, **kwargs)  # type: ignore[arg-type]


async def test_a_quiet_breaker_counts_every_success_and_still_trips_on_the_rate(sandbox: Sandbox) -> None:
    breaker = Breaker(failures=100, failure_rate=0.5, window=4)
    async with _core(sandbox, breaker=breaker) as core:
        for _ in range(10):  # past a full window of successes: quiet, each success one add
            assert (await chat_create(core, CHAT)).ok
        [state] = core.health()["breakers"]
        assert (state["successes"], state["failures"], state["recent_failure_rate"]) == (10, 0, 0.0)
        [latency] = core.health()["latencies"]
        assert latency["samples"] == 10  # every answer is learned
        sandbox.script(faults.status(502, times=2))
        for _ in range(2):
            assert isinstance((await chat_create(core, CHAT)).error, InternalServerError)
        [state] = core.health()["breakers"]
        assert state["state"] == "open" and state["recent_failure_rate"] == 0.5
        assert isinstance((await chat_create(core, CHAT)).error, CircuitOpenError)
        assert len(sandbox.requests) == 12


async def test_a_quiet_breaker_opens_after_consecutive_failures(sandbox: Sandbox) -> None:
    async with _core(sandbox, breaker=Breaker(failures=3, window=2)) as core:
        for _ in range(5):
            assert (await chat_create(core, CHAT)).ok
        sandbox.script(faults.status(503, times=3))
        for _ in range(3):
            assert isinstance((await chat_create(core, CHAT)).error, InternalServerError)
        assert isinstance((await chat_create(core, CHAT)).error, CircuitOpenError)
        [state] = core.health()["breakers"]
        assert (state["successes"], state["failures"], state["consecutive_failures"]) == (5, 3, 3)


async def test_kept_targets_name_each_model_and_server(sandbox: Sandbox, region2: Sandbox) -> None:
    """Concurrent calls to two models and two servers share the core's kept policy and lane; each
    answer's meta names its own model and server, and each (server, model) has its own breaker."""
    async with _core(sandbox, breaker=Breaker(), fallbacks=["backup-model"]) as core:
        there = RequestOptions(server_url=region2.url)  # not a resilience option: the core's policy
        calls = [(m, o) for m in ("a", "b") for o in (None, there)] * 3
        results = await asyncio.gather(*(chat_create(core, {**CHAT, "model": m}, o) for m, o in calls))
        served = [(r.unwrap().meta.model, r.unwrap().meta.server_url) for r in results]  # type: ignore[union-attr]
        expected = [(m, url) for m in ("a", "b") for url in (sandbox.url, region2.url)]
        assert served == expected * 3
        assert {(b["model"], b["server_url"]) for b in core.health()["breakers"]} == set(expected)
        assert all(b["successes"] == 3 for b in core.health()["breakers"])
        stream = (await chat_create_stream(core, {**CHAT, "model": "b"}, there)).unwrap()
        whole = (await stream.collect()).unwrap()
        assert whole.meta is not None and (whole.meta.model, whole.meta.server_url) == ("b", region2.url)
        assert acquired_connections(core) == 0


async def test_a_plain_core_names_no_target(sandbox: Sandbox) -> None:
    async with _core(sandbox) as core:
        meta = (await chat_create(core, CHAT)).unwrap().meta
        assert meta is not None and (meta.model, meta.server_url) == (None, None)
        assert core.route_policy is None and core.health()["latencies"] == []


async def test_options_keep_their_policy_and_the_table_stays_bounded(sandbox: Sandbox) -> None:
    sandbox.script(faults.only_for("sandbox-model", faults.status(503, times=None)))
    async with _core(sandbox) as core:
        kept = RequestOptions(fallbacks=["backup-model"])
        for _ in range(3):  # one options object: its policy made once, the fallback every time
            meta = (await chat_create(core, CHAT, kept)).unwrap().meta
            assert meta is not None and meta.model == "backup-model"
        assert len(core.option_policies) == 1
        for _ in range(OPTION_POLICIES + 10):  # options made per call: still right, the table bounded
            meta = (await chat_create(core, CHAT, RequestOptions(fallbacks=["backup-model"]))).unwrap().meta
            assert meta is not None and meta.model == "backup-model"
        assert len(core.option_policies) <= OPTION_POLICIES


async def test_lanes_stay_bounded_when_an_operation_is_made_per_call(sandbox: Sandbox) -> None:
    async with _core(sandbox, breaker=Breaker()) as core:
        for _ in range(LANES + 10):
            op = _CREATE.answered_by(_CREATE.handle)  # as structured-output streams do per call
            assert (await call(core, op, CHAT)).ok
        assert 0 < len(core.route_policy.lanes) <= LANES
        [state] = core.health()["breakers"]  # one (server, model): one breaker across all lanes
        assert state["successes"] == LANES + 10


async def test_a_failure_after_success_still_falls_back_from_a_kept_target(
    sandbox: Sandbox, region2: Sandbox
) -> None:
    async with _core(sandbox, breaker=Breaker(), fallbacks=[Fallback(server_url=region2.url)]) as core:
        assert (await chat_create(core, CHAT)).unwrap().meta.server_url == sandbox.url  # type: ignore[union-attr]
        sandbox.script(faults.status(503))
        res = (await chat_create(core, CHAT)).unwrap()
        assert res.meta is not None and res.meta.server_url == region2.url
        assert [f.server_url for f in res.meta.fallbacks] == [sandbox.url]
        assert region2.requests[-1].raw == sandbox.requests[-1].raw  # the call's own body went there
        again = (await chat_create(core, CHAT)).unwrap()  # the kept first target is unchanged
        assert again.meta is not None and (again.meta.server_url, again.meta.fallbacks) == (sandbox.url, ())


def test_the_cores_resilience_defaults_are_read_only() -> None:
    """Routes are worked out once per core: an assignment that would be ignored raises instead."""
    core = AtomaCore("t", "http://127.0.0.1:9", fallbacks=["backup"])
    assert [f.model for f in core.fallbacks] == ["backup"] and core.hedge is None and core.limiter is None
    for name in ("fallbacks", "hedge", "limiter"):
        with pytest.raises(AttributeError):
            setattr(core, name, None)
