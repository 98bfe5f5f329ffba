"""Lazy deadlines: nothing per read but a timestamp, and ONE loop timer per event loop for all of
them (`_Sweep`), instead of a loop timer created and cancelled per request or per socket read
(what aiohttp's `sock_read` and `total` do).

`AttemptTimer` bounds one attempt until its value is ready (a plain call's body, a stream's first
event): the response headers within `read`, the whole within the call's deadline. When due it
cancels the attempt's task, as `asyncio.timeout` does, and the request path turns that into a
`RequestTimeoutError`.

`Watchdog` watches a response's body once it is open. When it finds its `mark` older than
`seconds` while a read is waiting, or its absolute deadline passed, it injects the error into the
body, which wakes the waiting read with it. It can also watch for a lost connection: aiohttp's
reader misses some broken framing (a bad chunk-size line mid-body), closes the socket and leaves
the read waiting for ever, even after the server hangs up. Such a read is failed within about
`PROBE_SECONDS`, whatever the timeouts.
"""

from __future__ import annotations

import asyncio
import math
import sys
import weakref
from typing import TYPE_CHECKING, Any, Callable, Literal, Protocol

if TYPE_CHECKING:
    import aiohttp

    from .errors import AtomaError, TimeoutPhase

__all__ = ["PROBE_SECONDS", "AttemptTimer", "Waiter", "Watchdog", "connection_lost"]

PROBE_SECONDS = 1.0  # how often a waiting read checks that its connection still exists
_SLACK = 0.001  # the loop may run a timer up to its clock resolution early
_GRID = 0.01  # the sweep runs on this grid: deadlines fire up to 10 ms late, never early
_NEVER = math.inf
_UNCANCEL = sys.version_info >= (3, 11)  # Task.cancelling() / uncancel()


class _Deadline:
    """What the sweep holds: `due`, a loop time at or before the next moment `check` must run
    (it may be early: a deadline that moved on is found out then), and `check(now)`, which acts
    if something is due and returns the next due time, or None when it is done."""

    __slots__ = ("_sweep", "due")

    def _watch(self, loop: asyncio.AbstractEventLoop, due: float) -> None:
        """Put this deadline, first due at `due`, under `loop`'s sweep."""
        self.due = due
        self._sweep: _Sweep | None = _sweep_of(loop)
        self._sweep.add(self)

    def check(self, now: float) -> float | None:
        raise NotImplementedError

    def cancel(self) -> None:
        if self._sweep is not None:
            self._sweep.items.discard(self)
            self._sweep = None


class AttemptTimer(_Deadline):
    """Cancels the attempt's task at `call_due` (the call's `total` or `response` deadline), or
    at `headers_due` if the response headers have not come by then (`read`). Either may be None.

    Armed when the attempt starts, so its body builder and hooks run under the call's deadline
    too; `expect_headers(due)` when the request goes out. The owner sets `headers_in` when the
    headers come: that is all it does per request besides `cancel()`. After a
    `CancelledError`, `expired()` says whether it was this timer's; `rearm()` watches the call's
    deadline again after that (for the hooks that report the failure).
    """

    __slots__ = ("_cancelling", "_loop", "_task", "call_due", "fired", "headers_due", "headers_in")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, headers_due: float | None, call_due: float | None
    ) -> None:
        self.headers_due = headers_due
        self.call_due = call_due
        self.headers_in = False
        self.fired: Literal["read", "call"] | None = None
        self._loop = loop
        self._task: asyncio.Task[Any] | None = None
        self._cancelling = 0
        self._sweep = None
        due = self._due()
        if due is not None:
            self._start(due)

    def _start(self, due: float) -> None:
        """Watch this timer, first due at `due`, for the current task."""
        self._task = task = asyncio.current_task(self._loop)
        if _UNCANCEL and task is not None:
            self._cancelling = task.cancelling()  # type: ignore[attr-defined, unused-ignore]
        self._watch(self._loop, due)

    def expect_headers(self, headers_due: float | None) -> None:
        """The request goes out now: its response headers are due by `headers_due` (None: no limit)."""
        if headers_due is None:
            return
        self.headers_due = headers_due
        if self._sweep is None:
            if self.fired is None:
                self._start(headers_due if self.call_due is None else min(headers_due, self.call_due))
        elif headers_due < self.due:
            self.due = headers_due
            self._sweep.add(self)  # re-arms the sweep if this is now the soonest

    def rearm(self) -> None:
        """After it fired: watch the call's deadline again (at once if it has passed)."""
        self.fired = None
        self.headers_in = True  # the headers' wait is over, one way or the other
        if self._sweep is None and self.call_due is not None:
            self._start(self.call_due)

    def _due(self) -> float | None:
        headers_due = None if self.headers_in else self.headers_due
        if headers_due is None:
            return self.call_due
        return headers_due if self.call_due is None else min(headers_due, self.call_due)

    def check(self, now: float) -> float | None:
        due = self._due()
        if due is None or due > now:
            return due
        self.fired = "call" if due == self.call_due else "read"
        if self._task is not None:
            self._task.cancel()
        return None

    def expired(self) -> bool:
        """After a `CancelledError`: whether this timer caused it (and nobody else cancelled too).
        Below Python 3.11 a cancel in the same loop iteration as the deadline counts as it."""
        if self.fired is None:
            return False
        if not _UNCANCEL or self._task is None:
            return True
        left: int = self._task.uncancel()  # type: ignore[attr-defined, unused-ignore]
        return left <= self._cancelling


class Waiter(Protocol):
    """What a watchdog asks whether a read is waiting (a stream: between `__anext__` calls, its
    consumer's own time does not count)."""

    _waiting: bool
    _closed: bool


class Watchdog(_Deadline):
    """Fires `RequestTimeoutError(phase)` into the response's body once a read waits and
    `mark + seconds` has passed (`seconds` None: never), unless `defer_to` is due too (then its
    error: the more precise one); a `total` timeout once loop time reaches `until` (None: never),
    waiting or not; and `lost()` (if given) once a read waits and the connection is gone while
    the body neither ended nor failed.

    A read waits when `waiter` (held weakly) says so; without a waiter, always. The owner moves
    `mark` forward (to `loop.time()`) whenever progress is made: nothing else. No closures: a
    stream may keep thousands of these open.
    """

    __slots__ = (
        "_defer_to",
        "_loop",
        "_lost",
        "_response",
        "_total",
        "_waiter",
        "mark",
        "phase",
        "seconds",
        "until",
    )

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        seconds: float | None,
        phase: TimeoutPhase,
        *,
        waiter: Callable[[], Waiter | None] | None = None,
        lost: Callable[[], AtomaError] | None = None,
        until: float | None = None,
        total: float | None = None,
        defer_to: Watchdog | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        loop = self._loop = asyncio.get_running_loop() if loop is None else loop
        self._response = response
        self.seconds = seconds
        self.phase = phase
        self._waiter = waiter
        self._lost = lost
        self.until = until
        self._total = total
        self._defer_to = defer_to
        self.mark = now = loop.time()
        self._watch(loop, self._next(now))

    def _next(self, now: float) -> float:
        """When to look next: the due time, or at the next probe of the connection. Probes of
        all streams fall on the same whole seconds, so one sweep serves them all."""
        due = _NEVER
        if self.seconds is not None:
            due = self.mark + self.seconds
            if due <= now:
                due = now + self.seconds
        if self.until is not None and self.until < due:
            due = self.until
        if self._lost is not None or due == _NEVER:
            probe = math.ceil((now + PROBE_SECONDS / 2) / PROBE_SECONDS) * PROBE_SECONDS
            due = min(due, probe)
        return due

    def _waiting(self) -> bool:
        if self._waiter is None:
            return True
        waiter = self._waiter()
        return waiter is not None and waiter._waiting and not waiter._closed

    def _overdue(self, now: float) -> bool:
        return self.seconds is not None and now >= self.mark + self.seconds

    def check(self, now: float) -> float | None:
        from ._errormap import timeout_error

        error: AtomaError | None = None
        if self.until is not None and now >= self.until:
            error = timeout_error("total", self._total)
        elif self._waiting():
            if self._overdue(now):
                defer_to = self._defer_to
                if defer_to is not None and defer_to._overdue(now):
                    error = timeout_error(defer_to.phase, defer_to.seconds)
                else:
                    error = timeout_error(self.phase, self.seconds)
            elif self._lost is not None and connection_lost(self._response):
                error = self._lost()
        if error is not None:
            self._response.content.set_exception(error)
            return None
        return self._next(now)

    def progress(self) -> None:
        """Progress was made now: the deadline starts over."""
        self.mark = self._loop.time()


class _Sweep:
    """The deadlines in force on one loop, and ONE loop timer, set for the earliest `due` among
    them when it was (re)armed. Adding or removing a deadline is a set operation; the timer is
    re-armed only when a deadline is due sooner. When it runs it checks every deadline: what is
    due acts, the rest say when they are due next, and it re-arms for the earliest of those."""

    __slots__ = ("_at", "_handle", "_loop", "items")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.items: set[_Deadline] = set()
        self._handle: asyncio.TimerHandle | None = None
        self._at = _NEVER

    def add(self, item: _Deadline) -> None:
        self.items.add(item)
        if item.due < self._at:
            self._arm(item.due)

    def _arm(self, due: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._at = due = math.ceil(due / _GRID) * _GRID  # deadlines close together: one run
        self._handle = self._loop.call_at(due, self._run)

    def _run(self) -> None:
        self._handle = None
        self._at = _NEVER
        now = self._loop.time() + _SLACK
        due_next = _NEVER
        for item in list(self.items):  # a check may cancel another deadline
            due: float | None = item.due
            if due is not None and due <= now:
                due = item.check(now)
                if due is None:
                    self.items.discard(item)
                    item._sweep = None
                    continue
                item.due = due
            if due is not None and due < due_next:
                due_next = due
        if due_next < _NEVER:
            self._arm(due_next)


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
