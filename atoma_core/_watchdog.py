"""Lazy deadlines: one loop timer each, no task, nothing per read but a timestamp.

`AttemptTimer` bounds one attempt until its value is ready (a plain call's body, a stream's first
event): the response headers within `read`, the whole within the call's deadline. When due it
cancels the attempt's task, as `asyncio.timeout` does, and the request path turns that into a
`RequestTimeoutError`. All attempts on a loop share one loop timer. aiohttp's own `sock_read` and
`total` timers are not used: they create (and cancel) loop timers per request and per socket read.

`Watchdog` watches a response's body once it is open. When it finds its `mark` older than
`seconds` while a read is waiting, or its absolute deadline passed, it injects the error into the
body, which wakes the waiting read with it. It can also watch for a lost connection: aiohttp's
reader misses some broken framing (a bad chunk-size line mid-body), closes the socket and leaves
the read waiting for ever, even after the server hangs up. Such a read is failed within
`PROBE_SECONDS`, whatever the timeouts.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING, Any, Callable, Literal

if TYPE_CHECKING:
    import aiohttp

    from .errors import AtomaError

__all__ = ["PROBE_SECONDS", "AttemptTimer", "Watchdog", "connection_lost"]

PROBE_SECONDS = 1.0  # how often a waiting read checks that its connection still exists
_SLACK = 0.001  # the loop may run a timer up to its clock resolution early


class AttemptTimer:
    """Cancels the attempt's task at `call_due` (the call's `total` or `response` deadline), or
    at `headers_due` if the response headers have not come by then (`read`). Either may be None.

    The owner sets `headers_in` when the headers come: that is all it does per request besides
    `cancel()`. After a `CancelledError`, `expired()` says whether it was this timer's. No loop
    timer of its own: the loop's `_Sweep` checks every attempt in flight with one.
    """

    __slots__ = ("_cancelling", "_sweep", "_task", "call_due", "fired", "headers_due", "headers_in")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, headers_due: float | None, call_due: float | None
    ) -> None:
        self.headers_due = headers_due
        self.call_due = call_due
        self.headers_in = False
        self.fired: Literal["read", "call"] | None = None
        self._sweep: _Sweep | None = None
        self._task: asyncio.Task[Any] | None = None
        self._cancelling = 0
        due = self.due()
        if due is not None:
            task = self._task = asyncio.current_task(loop)
            cancelling = getattr(task, "cancelling", None)  # Python 3.11+
            self._cancelling = cancelling() if cancelling is not None else 0
            self._sweep = _sweep_of(loop)
            self._sweep.add(self, due)

    def due(self) -> float | None:
        """The loop time it fires at: the earlier deadline still standing."""
        headers_due = None if self.headers_in else self.headers_due
        if headers_due is None:
            return self.call_due
        return headers_due if self.call_due is None else min(headers_due, self.call_due)

    def fire(self, due: float) -> None:
        self._sweep = None
        self.fired = "call" if due == self.call_due else "read"
        if self._task is not None:
            self._task.cancel()

    def expired(self) -> bool:
        """After a `CancelledError`: whether this timer caused it (and nobody else cancelled too).
        Below Python 3.11 a cancel in the same loop iteration as the deadline counts as it."""
        if self.fired is None:
            return False
        uncancel = getattr(self._task, "uncancel", None)
        return uncancel is None or uncancel() <= self._cancelling

    def cancel(self) -> None:
        if self._sweep is not None:
            self._sweep.timers.discard(self)
            self._sweep = None


class _Sweep:
    """The `AttemptTimer`s in flight on one loop, and ONE loop timer set for the earliest due
    among them when it was (re)armed. Adding or removing an attempt is a set operation; the timer
    is re-armed only when an attempt is due sooner, and when it runs it fires what is due and
    re-arms for the earliest left (with the usual 120 s read deadline: rarely)."""

    __slots__ = ("_at", "_handle", "_loop", "timers")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.timers: set[AttemptTimer] = set()
        self._handle: asyncio.TimerHandle | None = None
        self._at = _NEVER

    def add(self, timer: AttemptTimer, due: float) -> None:
        self.timers.add(timer)
        if due < self._at:
            self._arm(due)

    def _arm(self, due: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._at = due
        self._handle = self._loop.call_at(due, self._run)

    def _run(self) -> None:
        self._handle = None
        self._at = _NEVER
        now = self._loop.time() + _SLACK
        due_next = _NEVER
        fired = []
        for timer in self.timers:
            due = timer.due()
            if due is None:
                continue
            if due <= now:
                fired.append((timer, due))
            elif due < due_next:
                due_next = due
        for timer, due in fired:
            self.timers.discard(timer)
            timer.fire(due)
        if due_next < _NEVER:
            self._arm(due_next)


_NEVER = float("inf")
_sweeps: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Sweep] = weakref.WeakKeyDictionary()
_last: tuple[weakref.ReferenceType[asyncio.AbstractEventLoop], _Sweep] | None = None


def _sweep_of(loop: asyncio.AbstractEventLoop) -> _Sweep:
    """This loop's sweep (the last loop's is found without a dictionary lookup)."""
    global _last
    if _last is not None and _last[0]() is loop:
        return _last[1]
    sweep = _sweeps.get(loop)
    if sweep is None:
        sweep = _sweeps[loop] = _Sweep(loop)
    _last = (weakref.ref(loop), sweep)
    return sweep


class Watchdog:
    """Fires `make_error()` into the response's body once `waiting()` and `mark + seconds` has
    passed (`seconds` None: never); `make_late()` once loop time reaches `until` (None: never),
    waiting or not; and `make_lost()` (if given) once `waiting()` and the connection is gone while
    the body neither ended nor failed.

    The owner moves `mark` forward (to `loop.time()`) whenever progress is made; the timer
    re-arms itself for the new due time instead of being cancelled and re-created per read.
    """

    __slots__ = (
        "_handle",
        "_loop",
        "_make_error",
        "_make_late",
        "_make_lost",
        "_response",
        "_waiting",
        "mark",
        "seconds",
        "until",
    )

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        seconds: float | None,
        make_error: Callable[[], AtomaError],
        waiting: Callable[[], bool],
        make_lost: Callable[[], AtomaError] | None = None,
        until: float | None = None,
        make_late: Callable[[], AtomaError] | None = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._response = response
        self._make_error = make_error
        self._make_lost = make_lost
        self._make_late = make_late
        self._waiting = waiting
        self.seconds = seconds
        self.until = until
        self.mark = self._loop.time()
        self._handle: asyncio.TimerHandle | None = self._loop.call_at(self._next(self.mark), self._check)

    def _next(self, now: float) -> float:
        """When to look next: the due time, or sooner to probe the connection."""
        seconds = self.seconds
        due = now + PROBE_SECONDS
        if seconds is not None:
            due = self.mark + seconds
            if due <= now:
                due = now + seconds
            if self._make_lost is not None:
                due = min(due, now + PROBE_SECONDS)
        if self.until is not None:
            due = min(due, self.until)
        return due

    def _check(self) -> None:
        now = self._loop.time()
        error = None
        if self.until is not None and now + _SLACK >= self.until and self._make_late is not None:
            error = self._make_late()
        elif self._waiting():
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

    def now(self) -> float:
        """Loop time, give or take the timer slack: a deadline at or before it has passed."""
        return self._loop.time() + _SLACK

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
