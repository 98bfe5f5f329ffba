"""Rate limiters: at most `requests` requests (and `tokens` tokens) in any `per` seconds, and a
429 that pauses everyone sharing the limiter until its `Retry-After` has passed.

`LocalLimiter` keeps its window in this process. `RedisLimiter` (`atoma_core.redis_limiter`,
extra `redis`) keeps it in Redis, so every process and machine sharing a key shares its budget.
Either goes where a limiter is taken: `AtomaCore(limiter=)`, `RequestOptions(limiter=)`
(every HTTP attempt acquires first), `batch_run(limiter=)`, `atoma batch --limiter`.

A limiter is any object with these coroutines:

    acquire(tokens: float = 0.0) -> None   wait until one request of `tokens` may go, take it
    rate_limited(pause: float) -> None      a 429 said wait `pause` seconds: everyone waits
    aclose() -> None                        release connections (idempotent)

The window slides: whatever minute you look at, it holds at most `requests` acquisitions.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any, Protocol

from .config import number
from .errors import InvalidRequestError

__all__ = ["UNLIMITED", "Limiter", "LocalLimiter", "limiter_from_url"]


class Limiter(Protocol):
    """What the request path and the batch runner call (see the module doc)."""

    async def acquire(self, tokens: float = 0.0) -> None: ...

    async def rate_limited(self, pause: float) -> None: ...

    async def aclose(self) -> None: ...


def check_rates(requests: float | None, tokens: float | None, per: float) -> None:
    if requests is None and tokens is None:
        raise InvalidRequestError("a limiter needs requests=, tokens= or both")
    for name, value in (("requests", requests), ("tokens", tokens)):
        if value is not None:
            number(f"limiter {name}", value, "a positive number, or None", positive=True)
    number("limiter per", per, "a positive number of seconds", positive=True)


class LocalLimiter:
    """At most `requests` acquisitions and `tokens` tokens in any `per` seconds, in this process
    (any event loop: the clock is `time.monotonic()`). A request larger than `tokens` goes alone."""

    def __init__(
        self, requests: float | None = None, tokens: float | None = None, *, per: float = 60.0
    ) -> None:
        check_rates(requests, tokens, per)
        self.requests = requests
        self.tokens = tokens
        self.per = per
        self.paused_until = 0.0
        self._window: deque[tuple[float, float]] = deque()  # (when, tokens), oldest first
        self._used = 0.0  # tokens in the window

    def __repr__(self) -> str:
        return f"LocalLimiter(requests={self.requests!r}, tokens={self.tokens!r}, per={self.per!r})"

    def _wait(self, tokens: float, now: float) -> float:
        """Seconds before `tokens` may go (0: now)."""
        if now < self.paused_until:
            return self.paused_until - now
        window = self._window
        horizon = now - self.per
        while window and window[0][0] <= horizon:
            self._used -= window.popleft()[1]
        if not window:
            return 0.0
        oldest = window[0][0] + self.per - now
        if self.requests is not None and len(window) >= self.requests:
            return oldest
        if self.tokens is not None and self._used + tokens > self.tokens:
            return oldest
        return 0.0

    async def acquire(self, tokens: float = 0.0) -> None:
        while True:
            now = time.monotonic()
            wait = self._wait(tokens, now)
            if wait <= 0:  # nothing awaited between the check and the take: atomic on the loop
                self._window.append((now, tokens))
                self._used += tokens
                return
            await asyncio.sleep(wait)

    async def rate_limited(self, pause: float) -> None:
        self.paused_until = max(self.paused_until, time.monotonic() + pause)

    def pause_now(self, pause: float) -> None:
        """`rate_limited` without awaiting (the batch throttle's synchronous slow-down)."""
        self.paused_until = max(self.paused_until, time.monotonic() + pause)

    async def aclose(self) -> None:
        return None


class _Unlimited:
    """No limit: what a call given `limiter=UNLIMITED` uses instead of the core's limiter (a batch
    job that acquires for its attempts itself)."""

    async def acquire(self, tokens: float = 0.0) -> None:
        return None

    async def rate_limited(self, pause: float) -> None:
        return None

    async def aclose(self) -> None:
        return None

    def __repr__(self) -> str:
        return "UNLIMITED"


UNLIMITED = _Unlimited()


def limiter_from_url(
    url: str,
    requests: float | None = None,
    tokens: float | None = None,
    *,
    per: float = 60.0,
    key: str = "atoma",
    on_unavailable: str = "local",
) -> Any:
    """A limiter from a URL: `redis://...` / `rediss://...` / `unix://...` is a `RedisLimiter`
    (extra `redis`), `local` a `LocalLimiter`."""
    if url == "local":
        return LocalLimiter(requests, tokens, per=per)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from .redis_limiter import RedisLimiter

        return RedisLimiter(url, requests, tokens, per=per, key=key, on_unavailable=on_unavailable)  # type: ignore[arg-type]
    raise InvalidRequestError("a limiter URL starts with redis://, rediss:// or unix://, or is 'local'")
