"""A lazy deadline on a response's byte stream: one loop timer, no task, nothing per read but a
timestamp. When it finds its `mark` older than `seconds` while a read is waiting, it injects the
error into the stream, which wakes the waiting read with it.

It can also watch for a lost connection: aiohttp's reader misses some broken framing (a bad
chunk-size line mid-body), closes the socket and leaves the read waiting for ever, even after the
server hangs up. Such a read is failed within `PROBE_SECONDS`, whatever the timeouts.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import aiohttp

    from .errors import AtomaError

__all__ = ["PROBE_SECONDS", "Watchdog", "connection_lost"]

PROBE_SECONDS = 1.0  # how often a waiting read checks that its connection still exists


class Watchdog:
    """Fires `make_error()` into the response's body once `waiting()` and `mark + seconds` has
    passed (`seconds` None: never), and `make_lost()` (if given) once `waiting()` and the
    connection is gone while the body neither ended nor failed.

    The owner moves `mark` forward (to `loop.time()`) whenever progress is made; the timer
    re-arms itself for the new due time instead of being cancelled and re-created per read.
    """

    __slots__ = ("_handle", "_loop", "_make_error", "_make_lost", "_response", "_waiting", "mark", "seconds")

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        seconds: float | None,
        make_error: Callable[[], AtomaError],
        waiting: Callable[[], bool],
        make_lost: Callable[[], AtomaError] | None = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._response = response
        self._make_error = make_error
        self._make_lost = make_lost
        self._waiting = waiting
        self.seconds = seconds
        self.mark = self._loop.time()
        self._handle: asyncio.TimerHandle | None = self._loop.call_at(self._next(self.mark), self._check)

    def _next(self, now: float) -> float:
        """When to look next: the due time, or sooner to probe the connection."""
        seconds = self.seconds
        if seconds is None:
            return now + PROBE_SECONDS
        due = self.mark + seconds
        if due <= now:
            due = now + seconds
        return due if self._make_lost is None else min(due, now + PROBE_SECONDS)

    def _check(self) -> None:
        now = self._loop.time()
        if self._waiting():
            error = None
            if self.seconds is not None and now >= self.mark + self.seconds:
                error = self._make_error()
            elif self._make_lost is not None and connection_lost(self._response):
                error = self._make_lost()
            if error is not None:
                self._handle = None
                self._response.content.set_exception(error)
                return
        self._handle = self._loop.call_at(self._next(now), self._check)

    def progress(self) -> None:
        """Progress was made now: the deadline starts over."""
        self.mark = self._loop.time()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


def connection_lost(response: aiohttp.ClientResponse) -> bool:
    """Whether the response's connection is closed (its socket gone) while its body has neither
    ended nor failed: then no read of it can ever complete."""
    content = response.content
    if content.is_eof() or content.exception() is not None:
        return False
    connection = response.connection
    if connection is None:
        return False
    protocol = connection.protocol
    return protocol is None or protocol.transport is None
