"""One of the processes of tests/test_shared_limiter.py: prints "ready", waits for a line on
stdin, then makes chat calls to the sandbox through a `RedisLimiter`, either as plain calls
(`AtomaCore(limiter=...)`) or as a batch job (`batch_run(limiter=...)`), and prints a summary
line, then the times Redis let its requests through (JSON, Redis's clock).

    python -m tests.limiter_worker SANDBOX_URL REDIS_URL WORKER MODE COUNT|SECONDS REQUESTS PER
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from atoma_core import AtomaCore, RetryConfig
from atoma_core.redis_limiter import RedisLimiter
from atoma_funcs import batch_run, chat_create

TOKEN = "sk-test-secret-token-123"


class Recording:
    """The limiter, noting when Redis let each acquire through (its own clock): printed at the end."""

    def __init__(self, limiter: RedisLimiter) -> None:
        self.limiter = limiter
        self.taken: list[float] = []

    async def acquire(self, tokens: float = 0.0) -> None:
        await self.limiter.acquire(tokens)
        assert self.limiter.last_taken is not None  # set just before acquire returned: no await between
        self.taken.append(self.limiter.last_taken)

    async def rate_limited(self, pause: float) -> None:
        await self.limiter.rate_limited(pause)

    async def aclose(self) -> None:
        await self.limiter.aclose()


async def main() -> None:
    url, redis_url, worker, mode, amount, requests, per = sys.argv[1:8]
    shared = RedisLimiter(redis_url, float(requests), per=float(per), key="test-limit", on_unavailable="fail")
    limiter = Recording(shared)
    headers = {"X-Worker": worker}
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    ok = 0
    if mode == "core":  # `amount` calls, 5 at a time, each acquiring through the core
        async with AtomaCore(TOKEN, url, headers=headers, limiter=limiter) as core:
            todo = iter(range(int(amount)))

            async def caller() -> int:
                done = 0
                for i in todo:
                    res = await chat_create(
                        core, {"model": "m", "messages": [{"role": "user", "content": f"{i}"}]}
                    )
                    done += res.ok
                return done

            ok = sum(await asyncio.gather(*(caller() for _ in range(5))))
    elif mode == "batch":  # `amount` lines through batch_run
        items = [
            {
                "custom_id": f"{worker}-{i}",
                "url": "/v1/chat/completions",
                "body": {"model": "m", "messages": [{"role": "user", "content": f"{i}"}]},
            }
            for i in range(int(amount))
        ]
        async with AtomaCore(TOKEN, url, headers=headers) as core:
            async for result in batch_run(core, items, concurrency=5, limiter=limiter):
                ok += result.result.ok
    else:  # "steady": two calls at a time for `amount` seconds (the 429 test)
        until = time.monotonic() + float(amount)
        async with AtomaCore(
            TOKEN, url, headers=headers, limiter=limiter, retry_config=RetryConfig()
        ) as core:

            async def steady() -> int:
                done = 0
                while time.monotonic() < until:
                    res = await chat_create(
                        core, {"model": "m", "messages": [{"role": "user", "content": "x"}]}
                    )
                    done += res.ok
                    await asyncio.sleep(0.01)
                return done

            ok = sum(await asyncio.gather(steady(), steady()))
    await limiter.aclose()
    print(f"ok {ok}", flush=True)
    print(json.dumps(limiter.taken), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
