"""A hedged attempt: start the attempt; if it has not answered after `delay` seconds and the
budget allows, start a copy; take whichever answers first, cancel the other and wait for it to
end, so its connection is closed and no task is left behind.

"Answers" is the attempt's value: a plain call's decoded body, a stream's first event. A
failure of one does not end the race while the other may still answer. `hedged_attempt` runs
one attempt of the request path that way (the copy to the same target, or to the next fallback).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, Awaitable, Callable, TypeVar

if TYPE_CHECKING:
    from ._fallback import Target
    from ._operation import CallContext, Operation
    from ._route import Attempt, Lane
    from .config import Hedge
    from .core import AtomaCore

__all__ = ["hedged_attempt", "race"]

T = TypeVar("T")


async def race(
    first: Callable[[], Awaitable[T]],
    copy: Callable[[], Awaitable[T]],
    delay: float,
    may_copy: Callable[[], bool],
    discard: Callable[[bool, Any], Awaitable[None]],
) -> tuple[T, bool]:
    """(value, whether the copy won). `may_copy()` is asked once the delay passed (the budget);
    `discard(is_copy, value)` closes a value that lost a tie (both answered at once). If both
    fail, the first attempt's failure is raised. A cancellation cancels both."""
    primary: asyncio.Future[T] = asyncio.ensure_future(first())
    try:
        started, _ = await asyncio.wait((primary,), timeout=delay)
    except BaseException:
        await _cancel(primary)
        raise
    if started or not may_copy():
        return await primary, False
    second: asyncio.Future[T] = asyncio.ensure_future(copy())
    tasks: dict[asyncio.Future[T], bool] = {primary: False, second: True}
    pending: set[asyncio.Future[T]] = {primary, second}
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            answered = [t for t in done if not t.cancelled() and t.exception() is None]  # retrieves
            winner = answered[0] if answered else None
            if winner is None:
                continue  # a failure: the other may still answer
            for other in done:
                if other is not winner and not other.cancelled() and other.exception() is None:
                    await discard(tasks[other], other.result())  # a tie: close the other value
            for loser in pending:
                await _cancel(loser)
            return winner.result(), tasks[winner]
    except BaseException:
        for task in (primary, second):
            await _cancel(task)
        raise
    second.exception()  # both failed: the copy's failure is dropped, the first one's raised
    return await primary, False


async def _cancel(task: asyncio.Future[Any]) -> None:
    """Cancel and wait for the end; what the task raised is retrieved and dropped (it lost).
    `asyncio.wait` never raises the task's error, only our own cancellation."""
    if not task.done():
        task.cancel()
        await asyncio.wait((task,))
    if not task.cancelled():
        task.exception()  # retrieved: no "exception was never retrieved" warning


def _twin(ctx: CallContext) -> CallContext:
    """A copy of the call's context for one racer (its own `state`: a confidential copy is
    sealed with its own key)."""
    twin = object.__new__(type(ctx))
    for name in type(ctx).__slots__:
        with contextlib.suppress(AttributeError):
            setattr(twin, name, getattr(ctx, name))
    return twin


async def hedged_attempt(
    core: AtomaCore,
    op: Operation[Any, T],
    ctx: CallContext,
    url: Any,
    headers: dict[str, str],
    body: bytes | None,
    attempt: Attempt[T],
    hedge: Hedge,
) -> T:
    """The attempt raced against a copy sent after the hedge delay, within the budget (the
    request path's `guarded_attempt` calls it; `ctx.route` is the call's `_route.Lane`)."""
    lane: Lane = ctx.route
    target: Target = ctx.target
    state = lane.policy.state
    loop = asyncio.get_running_loop()
    first, second = _twin(ctx), _twin(ctx)
    second.attempts = ctx.attempts + 1
    started: dict[int, float] = {}
    copy_sent = False

    async def run(twin: CallContext) -> T:
        started[id(twin)] = loop.time()
        if twin is second:
            if hedge.to == "fallback":
                _aim_at_next(twin)
            if lane.policy.limiter is not None:  # a copy is a request like any other
                await lane.policy.limiter.acquire(0.0)
        aim: Target = twin.target
        return await attempt(core, op, twin, aim.url, headers, body if aim is target else aim.body)

    def may_copy() -> bool:
        nonlocal copy_sent
        copy_sent = state.hedge.allow(hedge.budget)
        return copy_sent

    async def discard(is_copy: bool, value: Any) -> None:
        loser = second if is_copy else first
        loser.call = None  # its end is not the call's end
        closer = getattr(value, "aclose", None)
        if closer is not None:
            await closer()

    delay = state.hedge_delay(hedge, target.server_url, target.model)
    try:
        value, copy_won = await race(lambda: run(first), lambda: run(second), delay, may_copy, discard)
    finally:
        if copy_sent:  # the copy was an HTTP attempt of this call, whatever came of it
            ctx.attempts = max(ctx.attempts, second.attempts)
    if copy_sent:
        state.hedge.cancelled += 1  # the other one: cancelled, or closed after a tie
    winner = second if copy_won else first
    answered_by: Target = winner.target
    answered_by.latencies.add(loop.time() - started[id(winner)])  # type: ignore[union-attr]
    for name in ("attempts", "request_id", "state", "end_taken", "last_error", "target"):
        setattr(ctx, name, getattr(winner, name))
    if copy_sent:
        ctx.attempts = max(ctx.attempts, second.attempts)
    if copy_won:
        state.hedge.won += 1
        ctx.hedged = True
    return value


def _aim_at_next(twin: CallContext) -> None:
    """Send a hedged copy to the next fallback target instead, if there is one whose breaker is
    closed (an open or half-open one gets nothing extra)."""
    target: Target = twin.target
    if target.last:
        return
    ahead = twin.walk.peek_target(twin)
    if ahead is None or (ahead.breaker is not None and ahead.breaker.state != "closed"):
        return
    twin.target = ahead
    twin.state = None  # another model or node: nothing of this target's lock holds
    twin.last_error = None
