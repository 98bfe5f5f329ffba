"""The batch job's throttle: a token bucket for requests and one for tokens, a bound on the
requests in flight, and one shared slow-down when the server answers 429.

A 429 pauses every worker until its `Retry-After` has passed (not just the one that got it),
halves the job's rate (both buckets and the in-flight bound), and the rate then climbs back
linearly, a tenth of the full rate per second by default. Time comes from a `clock` (monotonic
seconds), so the arithmetic can be tested without sleeping.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Callable

__all__ = ["Throttle", "TokenBucket"]

Clock = Callable[[], float]


class TokenBucket:
    """`per_minute` units a minute, at most `burst_seconds` worth saved up (at least one unit).

    The level may drop below zero: a request larger than the bucket goes once the bucket is
    full, and usage above the estimate, known only after the answer, is owed by later requests.
    """

    __slots__ = ("capacity", "level", "rate", "updated")

    def __init__(self, per_minute: float, burst_seconds: float, now: float) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(self.rate * burst_seconds, 1.0)
        self.level = self.capacity
        self.updated = now

    def refill(self, now: float, factor: float) -> None:
        if now > self.updated:
            self.level = min(self.capacity, self.level + (now - self.updated) * self.rate * factor)
            self.updated = now

    def wait(self, cost: float, factor: float) -> float:
        """Seconds until `cost` units (or a full bucket, for a larger cost) are there."""
        missing = min(cost, self.capacity) - self.level
        return missing / (self.rate * factor) if missing > 0 else 0.0

    def adjust(self, units: float) -> None:
        """Give back (positive) or charge (negative) units after the fact."""
        self.level = min(self.capacity, self.level + units)

    def empty_until(self, when: float) -> None:
        """Nothing saved up, and nothing earned before `when` (the end of a 429 pause)."""
        self.level = min(self.level, 0.0)
        self.updated = max(self.updated, when)


class Throttle:
    """Admission for one batch job. `await acquire(tokens)` before each HTTP attempt, `release()`
    after it, `settle(estimate, used)` once its usage is known, `rate_limited(...)` on a 429."""

    def __init__(
        self,
        concurrency: int,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        *,
        burst_seconds: float = 1.0,
        recovery_per_second: float = 0.1,
        min_factor: float = 1 / 32,
        clock: Clock = time.monotonic,
    ) -> None:
        now = clock()
        self.concurrency = concurrency
        self.requests = TokenBucket(requests_per_minute, burst_seconds, now) if requests_per_minute else None
        self.tokens = TokenBucket(tokens_per_minute, burst_seconds, now) if tokens_per_minute else None
        self.recovery_per_second = recovery_per_second
        self.min_factor = min_factor
        self.clock = clock
        self.in_flight = 0
        self.paused_until = -math.inf
        self._floor = 1.0  # the factor right after the last cut
        self._recovering_from = -math.inf  # when the climb back from `_floor` started
        self._last_cut = -math.inf
        self._turn = asyncio.Lock()  # one waiter at a time, first come first served
        self._freed = asyncio.Event()

    def factor(self, now: float) -> float:
        """The share of the configured rate and concurrency in force now, in (0, 1]."""
        climbed = max(0.0, now - self._recovering_from) * self.recovery_per_second
        return min(1.0, self._floor + climbed)

    def limit(self, now: float) -> int:
        """Requests allowed in flight now."""
        return max(1, int(self.concurrency * self.factor(now) + 1e-9))

    def _wait(self, tokens: float, now: float) -> float | None:
        """Seconds to wait before an attempt may go (0: now), or None: until a slot is freed."""
        if now < self.paused_until:
            return self.paused_until - now
        factor = self.factor(now)
        if self.in_flight >= max(1, int(self.concurrency * factor + 1e-9)):
            return None
        wait = 0.0
        for bucket, units in ((self.requests, 1.0), (self.tokens, tokens)):
            if bucket is not None:
                bucket.refill(now, factor)
                wait = max(wait, bucket.wait(units, factor))
        return wait

    def _take(self, tokens: float) -> None:
        if self.requests is not None:
            self.requests.adjust(-1.0)
        if self.tokens is not None:
            self.tokens.adjust(-tokens)
        self.in_flight += 1

    async def acquire(self, tokens: float) -> float:
        """Wait for the pause, a free slot and both buckets; take them. Returns the send time,
        which `rate_limited` needs."""
        if not self._turn.locked():  # nobody queued: go at once if everything allows it
            now = self.clock()
            if self._wait(tokens, now) == 0.0:
                self._take(tokens)
                return now
        async with self._turn:
            while True:
                now = self.clock()
                wait = self._wait(tokens, now)
                if wait is None:
                    self._freed.clear()
                    await self._freed.wait()
                elif wait > 0:
                    await asyncio.sleep(wait)
                else:
                    self._take(tokens)
                    return now

    def release(self) -> None:
        """The attempt is over (answered, failed or cancelled): its slot is free."""
        self.in_flight -= 1
        self._freed.set()

    def settle(self, estimate: float, used: float) -> None:
        """Correct the token bucket with the real usage (0 for a failed attempt)."""
        if self.tokens is not None:
            self.tokens.adjust(estimate - used)

    def rate_limited(self, sent_at: float, pause: float) -> None:
        """A 429 for an attempt sent at `sent_at`: hold everyone for `pause` seconds, and halve the
        rate once per round of requests (429s for requests sent before the last cut do not cut
        again: they answer the old rate)."""
        now = self.clock()
        self.paused_until = max(self.paused_until, now + pause)
        for bucket in (self.requests, self.tokens):
            if bucket is not None:
                bucket.empty_until(self.paused_until)
        if sent_at >= self._last_cut:
            self._floor = max(self.min_factor, self.factor(now) / 2)
            self._recovering_from = self.paused_until
            self._last_cut = now
