"""Circuit breakers per (server, model), kept by the core: plain state and arithmetic, no I/O.

The request path asks `admit()` before each attempt to a target and reports each attempt's
outcome with `record()`. Only retryable failures (429, 5xx, connection errors, timeouts) count
against a server: a 400 is an answer, and says the server is up. Time is `time.monotonic()`, so
breakers work the same across event loops; what users see (`until`) is `time.time()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Literal

from .config import Breaker, CircuitChange, shown_url

if TYPE_CHECKING:
    from .config import Hooks

__all__ = ["CircuitBreaker", "State"]

log = logging.getLogger("atoma")
State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """The breaker of one (server, model). `state` is closed, open or half_open."""

    __slots__ = (
        "_changed",
        "_notify",
        "config",
        "consecutive",
        "failures",
        "model",
        "opened_until",
        "outcomes",
        "quiet",
        "recent",
        "server_url",
        "state",
        "successes",
        "trial",
    )

    def __init__(
        self, config: Breaker, server_url: str, model: str | None, notify: Callable[[CircuitChange], None]
    ) -> None:
        self.config = config
        self.server_url = server_url
        self.model = model
        self.state: State = "closed"
        self.consecutive = 0  # retryable failures in a row
        self.failures = 0  # all retryable failures seen
        self.successes = 0
        self.outcomes: deque[bool] = deque(maxlen=config.window)  # True: failed
        self.recent = 0  # the failures among `outcomes`
        # Closed, no trial, and a success would change nothing but `successes` (a full window of
        # successes): the request path then counts it itself, without a call (see `record`).
        self.quiet = False
        self.opened_until = 0.0  # monotonic time an open breaker half-opens
        self.trial = False  # half-open: the one trial attempt is in flight
        self._changed: asyncio.Event | None = None  # set on every change, for waiters
        self._notify = notify

    def blocked_for(self, now: float) -> float | None:
        """None if an attempt may go now (it becomes the trial when half-open), else the seconds
        until this breaker may let one through (0 while another call's trial decides)."""
        if self.state == "closed":
            return None
        if self.state == "open":
            if now < self.opened_until:
                return self.opened_until - now
            self._move("half_open")
        if self.trial:
            return 0.0
        self.trial = True
        self.quiet = False
        return None

    async def wait_change(self, seconds: float) -> None:
        """Sleep until the breaker changes state or `seconds` pass (a waiter's next look)."""
        if self._changed is None:
            self._changed = asyncio.Event()
        changed = self._changed
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(changed.wait(), max(seconds, 0.001))

    def record(self, failed: bool) -> None:
        """One attempt's outcome: `failed` means a retryable failure. A success on a `quiet`
        breaker is only `successes += 1`, which the request path does without calling this."""
        outcomes = self.outcomes
        if len(outcomes) == outcomes.maxlen and outcomes[0]:
            self.recent -= 1  # the oldest failure leaves the window
        outcomes.append(failed)
        if failed:
            self.recent += 1
        if self.trial:
            self.trial = False
            if failed:
                self.failures += 1
                self.consecutive += 1
                self._open()
            else:
                self._close()
        elif not failed:
            self.successes += 1
            self.consecutive = 0
        else:
            self.failures += 1
            self.consecutive += 1
            if self.state == "closed" and self._tripped():
                self._open()
        full = len(outcomes) == outcomes.maxlen
        self.quiet = self.state == "closed" and not self.trial and self.recent == 0 and full

    def abandon(self) -> None:
        """An admitted attempt ended without an outcome (cancelled): another may be the trial."""
        if self.trial:
            self.trial = False
            self._wake()

    def _tripped(self) -> bool:
        config = self.config
        if self.consecutive >= config.failures:
            return True
        rate = config.failure_rate
        outcomes = self.outcomes
        return rate is not None and len(outcomes) >= config.window and self.recent >= rate * len(outcomes)

    def _open(self) -> None:
        self.opened_until = time.monotonic() + self.config.cooldown
        self._move("open")

    def _close(self) -> None:
        self.consecutive = 0
        self.successes += 1
        self.outcomes.clear()
        self.recent = 0
        self._move("closed")

    def _move(self, new: State) -> None:
        old, self.state = self.state, new
        self.quiet = False  # `record` decides again
        self._wake()
        if old == new and new != "open":
            return
        until = self.wall_until() if new == "open" else None
        change = CircuitChange(
            server_url=self.server_url,
            model=self.model,
            old=old,
            new=new,
            until=until,
            failures=self.consecutive,
        )
        log.info("circuit %s %s: %s -> %s", shown_url(self.server_url), self.model, old, new)
        self._notify(change)

    def _wake(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def wall_until(self) -> float:
        """When an open breaker half-opens, as `time.time()`."""
        return time.time() + max(0.0, self.opened_until - time.monotonic())

    def snapshot(self) -> dict[str, Any]:
        """This breaker as plain data (what `AtomaCore.health()` lists)."""
        now = time.monotonic()
        due = self.state == "open" and now >= self.opened_until  # the next call will be its trial
        state = "half_open" if due else self.state
        return {
            "server_url": self.server_url,
            "model": self.model,
            "state": state,
            "consecutive_failures": self.consecutive,
            "failures": self.failures,
            "successes": self.successes,
            "recent_failure_rate": (self.recent / len(self.outcomes)) if self.outcomes else 0.0,
            "open_until": self.wall_until() if self.state == "open" else None,
        }


def notifier(hooks_of: Callable[[], tuple[Hooks, ...]]) -> Callable[[CircuitChange], None]:
    """The function a breaker calls on a change: every installed `on_circuit_change` hook, each
    guarded (a hook's failure is logged: the call goes on)."""

    def notify(change: CircuitChange) -> None:
        for hooks in hooks_of():
            hook = hooks.on_circuit_change
            if hook is not None:
                try:
                    hook(change)
                except Exception:
                    log.exception("on_circuit_change hook failed")

    return notify
