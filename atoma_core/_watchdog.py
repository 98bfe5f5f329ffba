"""A lazy deadline on a response's byte stream: one loop timer, no task, nothing per read but a
timestamp. When it finds its `mark` older than `seconds` while a read is waiting, it injects the
error into the stream, which wakes the waiting read with it."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import aiohttp

    from .errors import AtomaError

__all__ = ["Watchdog"]


class Watchdog:
    """Fires `make_error()` into `content` once `waiting()` and `mark + seconds` has passed.

    The owner moves `mark` forward (to `loop.time()`) whenever progress is made; the timer
    re-arms itself for the new due time instead of being cancelled and re-created per read.
    """

    __slots__ = ("_content", "_handle", "_loop", "_make_error", "_waiting", "mark", "seconds")

    def __init__(
        self,
        content: aiohttp.StreamReader,
        seconds: float,
        make_error: Callable[[], AtomaError],
        waiting: Callable[[], bool],
        start: float | None = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._content = content
        self._make_error = make_error
        self._waiting = waiting
        self.seconds = seconds
        self.mark = self._loop.time() if start is None else start
        self._handle: asyncio.TimerHandle | None = self._loop.call_at(self.mark + seconds, self._check)

    def _check(self) -> None:
        now = self._loop.time()
        due = self.mark + self.seconds
        if now >= due and self._waiting():
            self._handle = None
            self._content.set_exception(self._make_error())
            return
        self._handle = self._loop.call_at(due if due > now else now + self.seconds, self._check)

    def progress(self) -> None:
        """Progress was made now: the deadline starts over."""
        self.mark = self._loop.time()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
