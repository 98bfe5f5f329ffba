"""One task in flight per key, shared: concurrent callers that need the same slow thing (a node
lock, a node-key check) wait for one task instead of each starting their own. Each caller waits
within its own deadline; a caller that leaves (cancelled, or out of time) leaves the task running
for the others, and its outcome is never logged as unretrieved."""

from __future__ import annotations

import asyncio
import functools
from typing import Any, Callable, Coroutine, Generic, Hashable, TypeVar

__all__ = ["SingleFlight"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    """The tasks in flight, by key (a task belongs to the loop that started it)."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending: dict[K, asyncio.Task[V]] = {}

    async def run(self, key: K, start: Callable[[], Coroutine[Any, Any, V]], timeout: float | None) -> V:
        """The outcome of the task in flight for `key`, or of a new one running `start()`. This
        caller waits at most `timeout` seconds (then `asyncio.TimeoutError`), None: no limit."""
        loop = asyncio.get_running_loop()
        task = self._pending.get(key)
        if task is None or task.done() or task.get_loop() is not loop:
            task = loop.create_task(start())
            self._pending[key] = task
            task.add_done_callback(functools.partial(self._settled, key))
        if timeout is None:
            return await asyncio.shield(task)
        return await asyncio.wait_for(asyncio.shield(task), max(0.0, timeout))

    def _settled(self, key: K, task: asyncio.Task[V]) -> None:
        if self._pending.get(key) is task:
            del self._pending[key]
        if not task.cancelled():
            task.exception()  # retrieved: a task whose callers all left must not log it
