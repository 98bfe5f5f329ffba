"""When to retry and how long to wait: status codes, `x-should-retry`, `Retry-After`, backoff.

The schedule is `backoff.expo` with `backoff.full_jitter`, created only once a retry is needed,
so a call that succeeds first time pays nothing for it.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Iterator, Mapping

if TYPE_CHECKING:
    from .config import RetryConfig

__all__ = ["RetrySchedule", "server_retry_after", "status_is_retryable"]


def server_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asks us to wait: `retry-after-ms`, then `Retry-After` (seconds or date).
    A value that is not a finite number (`NaN`, `inf`) is ignored, as if absent: the backoff
    schedule decides instead (an unchecked NaN would make the retry sleep forever)."""
    value = headers.get("retry-after-ms")
    if value is not None:
        seconds = _finite_seconds(value, 1000.0)
        if seconds is not None:
            return seconds
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _finite_seconds(value, 1.0)
    if seconds is not None:
        return seconds
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError, OSError):
        return None
    return max(when - time.time(), 0.0)


def _finite_seconds(value: str, per_second: float) -> float | None:
    """`value / per_second` as seconds (negative counts as 0), or None if not a finite number."""
    try:
        number = float(value)
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    return max(number / per_second, 0.0)


def status_is_retryable(
    config: RetryConfig, status: int, headers: Mapping[str, str], extra: frozenset[int] = frozenset()
) -> bool:
    """`x-should-retry: true|false` wins; otherwise the configured status codes (plus the
    operation's own `extra`, such as 423/425 for confidential compute) decide."""
    should = headers.get("x-should-retry")
    if should == "true":
        return True
    if should == "false":
        return False
    return status in config.status_codes or status in extra


class RetrySchedule:
    """The waits of one call's retries, honouring the attempt count and the elapsed budget."""

    __slots__ = ("_config", "_started", "_waits", "retries")

    def __init__(self, config: RetryConfig, started: float) -> None:
        import backoff

        strategy = config.backoff
        self._config = config
        self._started = started
        self._waits: Iterator[float] = backoff.expo(
            base=strategy.exponent,
            factor=strategy.initial_interval / 1000.0,
            max_value=strategy.max_interval / 1000.0,
        )
        next(self._waits)  # backoff's generators are primed with one send(None)
        self.retries = 0

    def next_wait(self, now: float, server_wait: float | None, deadline: float | None) -> float | None:
        """Seconds to sleep before the next attempt, or None to give up now."""
        import backoff

        config = self._config
        if self.retries >= config.max_retries:
            return None
        if server_wait is not None:
            if server_wait > config.max_retry_after_ms / 1000.0:
                return None  # the server wants a longer pause than we accept: fail fast
            wait = server_wait
        else:
            wait = backoff.full_jitter(next(self._waits))
        budget_end = self._started + config.backoff.max_elapsed_time / 1000.0
        if deadline is not None:
            budget_end = min(budget_end, deadline)
        if now + wait >= budget_end:
            return None
        self.retries += 1
        return wait
