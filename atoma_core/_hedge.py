"""A hedged attempt: start the attempt; if it has not answered after `delay` seconds and the
budget allows, start a copy; take whichever answers first, cancel the other and wait for it to
end, so its connection is closed and no task is left behind.

"Answers" is the attempt's value: a plain call's decoded body, a stream's first event. A
failure of one does not end the race while the other may still answer.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, TypeVar

__all__ = ["race"]

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
