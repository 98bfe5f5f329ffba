"""Fallbacks, breakers, hedging and a limiter on one core at once, against two sandboxes as two
regions: region 1 in a storm of 503s and resets, region 2 with a slow first token now and then."""

from __future__ import annotations

import asyncio

from atoma_core import AtomaCore
from atoma_core.config import Breaker, Fallback, Hedge
from atoma_core.errors import CircuitOpenError
from atoma_core.limiter import LocalLimiter
from atoma_core.testing import Sandbox, faults
from atoma_funcs import chat_create, chat_create_stream

from .conftest import CHAT, TOKEN, acquired_connections
from .test_hedging import hedge_tasks


async def test_a_storm_in_one_region_with_a_slow_tail_in_the_other() -> None:
    async with Sandbox(token=TOKEN) as region1, Sandbox(token=TOKEN) as region2:
        region1.script(faults.status(503), faults.reset(), faults.status(503, times=None))
        region2.script(*[faults.delay(1.0) if i % 5 == 2 else faults.delay(0.0) for i in range(100)])
        limiter = LocalLimiter(requests=1000, per=60)
        async with AtomaCore(
            TOKEN,
            region1.url,
            retry_config=0,
            fallbacks=[Fallback(server_url=region2.url)],
            breaker=Breaker(failures=3, cooldown=60),
            hedge=Hedge(delay=0.05, budget=0.3),
            limiter=limiter,
        ) as core:
            results = []
            for i in range(20):
                call = chat_create_stream if i % 2 else chat_create
                res = await call(core, CHAT)
                assert res.ok, res
                value = res.value
                if i % 2:
                    async with value as stream:  # type: ignore[union-attr]
                        value = (await stream.collect()).unwrap()
                results.append(value)
            assert len(region1.requests) == 3  # the storm opened its breaker: then left alone
            servers = {r.meta.server_url for r in results}  # type: ignore[union-attr]
            assert servers == {region2.url}
            later = results[-1].meta
            assert later is not None and isinstance(later.fallbacks[0].error, CircuitOpenError)
            health = core.health()
            hedge = health["hedge"]
            assert 0 < hedge["hedged"] <= 0.3 * hedge["calls"]
            assert hedge["calls"] == 20
            states = {(b["server_url"], b["state"]) for b in health["breakers"]}
            assert states == {(region1.url, "open"), (region2.url, "closed")}
            sent = len(region1.requests) + len(region2.requests)
            assert len(limiter._window) == sent  # every request, copies included, was paced
            await asyncio.sleep(0)
            assert acquired_connections(core) == 0 and hedge_tasks() == []
