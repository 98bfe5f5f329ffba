"""`AtomaSyncSDK`: the bundled client for synchronous code (Flask and Django views, scripts,
default Lambda handlers). The sub-clients of `AtomaSDK`, with plain methods.

    with AtomaSyncSDK() as sdk:
        resp = sdk.chat.create(model=..., messages=[...])
        with sdk.chat.create_stream(model=..., messages=[...]) as stream:
            for chunk in stream: ...

Each client runs one event loop on a daemon thread (`LoopThread`); every call runs there as a
coroutine, the very code `AtomaSDK` awaits, while the calling thread waits for its result. So
connections are pooled across calls and threads, any number of threads may share a client, and
errors, deadlines, retries and cleanup are those of `AtomaSDK`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import queue
import sys
import threading
import warnings
import weakref
from typing import TYPE_CHECKING, Any, Callable, Coroutine, Generic, Iterator, Mapping, TypeVar

from atoma_core.errors import APIConnectionError, AtomaError, InvalidRequestError, StreamInterruptedError
from atoma_core.result import Err

from ._faces import Sync
from .sdk import _Client, import_request_path

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Self

    from atoma_core._events import EventStream, StreamMetrics
    from atoma_core.core import AtomaCore
    from atoma_core.models.usage import Usage
    from atoma_core.result import Result

    from ._parse_stream import ChatParseStream

__all__ = ["AtomaSyncSDK", "LoopThread", "SyncStream"]

T = TypeVar("T")
E = TypeVar("E")
R = TypeVar("R")
S = TypeVar("S", bound="EventStream[Any, Any]")
S_co = TypeVar("S_co", bound="EventStream[Any, Any]", covariant=True)

_WAIT_SLICE = 1.0  # seconds a waiting thread sleeps before it checks for signals again
_END: Any = object()  # the end of a stream, in a `SyncStream`'s queue


class LoopThread:
    """An event loop on its own daemon thread. `run(coroutine)`, from any other thread, runs it
    there and returns its result or raises its exception.

    Stopped by `close()`, or when no client refers to it any more (garbage collection or
    interpreter exit): its tasks are cancelled, the sessions of its loop closed, its DNS threads
    joined. In a forked child (a pre-forking server such as gunicorn --preload), where the
    parent's thread does not exist, the first call starts a loop thread of the child's own.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._closed = False
        self._warned = False  # about a call from inside a running event loop: once per client
        self._start()

    def _start(self) -> None:
        self._pid = os.getpid()
        self._loop = asyncio.new_event_loop()
        self._streams: weakref.WeakSet[EventStream[Any, Any]] = weakref.WeakSet()  # loop thread only
        self._thread = threading.Thread(target=_serve, args=(self._loop,), name="atoma-sync", daemon=True)
        self._thread.start()
        self._stop = weakref.finalize(self, _stop, self._loop, self._thread)

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Start `coroutine` on the loop; refused (`InvalidRequestError`) once the client is closed."""
        with self._lock:
            refusal = self._refusal()
            if refusal is not None:
                coroutine.close()
                raise refusal
            if not self._warned and asyncio._get_running_loop() is not None:
                self._warned = True
                _warn_running_loop(asyncio._get_running_loop())
            if self._pid != os.getpid():  # forked: the parent's loop and its sockets stay theirs
                self._stop.detach()
                self._start()
            return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` on the loop and wait for it. A KeyboardInterrupt (or any exception)
        while waiting cancels it there, so its connection is released."""
        future = self.submit(coroutine)
        try:
            while True:  # in slices: a Ctrl-C delivered to another thread is still seen here
                try:
                    return future.result(_WAIT_SLICE)
                except concurrent.futures.TimeoutError:
                    if future.done():  # the call's own TimeoutError, not the slice's
                        raise
        except concurrent.futures.CancelledError:
            raise APIConnectionError("the client was closed while this call was running") from None
        finally:
            future.cancel()  # a no-op once it is done

    def open_stream(self, coroutine: Coroutine[Any, Any, S]) -> SyncStream[S]:
        """Run a coroutine that opens a stream; the stream is closed with the client if still open."""
        return SyncStream(self, self.run(_tracked(coroutine, self._streams)))

    def close_stream(self, stream: EventStream[Any, Any], wait: bool = True) -> None:
        """Close `stream` on the loop: waiting for it, or only scheduling it from a finaliser (or
        on the loop thread itself, where waiting would wait for itself)."""
        if stream.closed:
            return
        if wait and self._refusal() is None:
            self.run(stream.aclose())
        elif not self._loop.is_closed():
            asyncio.run_coroutine_threadsafe(stream.aclose(), self._loop)

    def close(self, core: AtomaCore) -> None:
        """Close open streams, cancel running calls, close `core`'s session, stop the thread.
        Idempotent; later calls are refused with `InvalidRequestError`."""
        with self._lock:
            if self._closed:
                return
            refusal = self._refusal()
            if refusal is not None:
                raise refusal
            self._closed = True
            drained = asyncio.run_coroutine_threadsafe(_drain(self._streams, core), self._loop)
        drained.result()
        self._stop()

    def _refusal(self) -> InvalidRequestError | None:
        if self._closed:
            return InvalidRequestError("this AtomaSyncSDK is closed")
        if threading.get_ident() == self._thread.ident:
            return InvalidRequestError(
                "AtomaSyncSDK called from its own loop thread (from a hook?): it would wait for itself"
            )
        return None


def _warn_running_loop(loop: asyncio.AbstractEventLoop | None) -> None:
    """Called from a coroutine, a sync call blocks that loop until it returns, and deadlocks
    until a read timeout if the server lives on it. A notebook's cell runs in a loop, and works:
    so this is a warning (pointing at the caller's line), not a refusal."""
    frame = sys._getframe(0)
    level = 1
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith(_OURS):
        frame = frame.f_back
        level += 1
    warnings.warn(
        f"AtomaSyncSDK called inside a running event loop ({loop!r}): it blocks that loop until the"
        " call returns (a server on that same loop cannot answer: it waits for the read timeout);"
        " in async code use AtomaSDK and await its methods",
        RuntimeWarning,
        stacklevel=level,
    )


_OURS = ("atoma_funcs.", "atoma_core.")


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    """The thread's body: run the loop until stopped, then shut it down as `asyncio.run` does."""
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())  # closes the cores' sessions
        loop.run_until_complete(loop.shutdown_default_executor())  # the DNS threads
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def _stop(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    """Stop the loop and wait for its thread (unless called on that thread)."""
    if loop.is_closed():
        return
    loop.call_soon_threadsafe(loop.stop)
    if threading.current_thread() is not thread:
        thread.join()


async def _drain(streams: weakref.WeakSet[EventStream[Any, Any]], core: AtomaCore) -> None:
    for stream in list(streams):
        await stream.aclose()
    running = asyncio.all_tasks() - {asyncio.current_task()}
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)
    await core.close()


async def _tracked(opening: Coroutine[Any, Any, S], streams: weakref.WeakSet[EventStream[Any, Any]]) -> S:
    stream = await opening
    streams.add(stream)
    return stream


async def _pump(stream: EventStream[Any, Any], items: queue.SimpleQueue[Any]) -> None:
    """Read the stream on the loop and hand each item to the reading thread through `items`: one
    queue put per chunk, no round trip to the loop per chunk. Ends with `_END` or the error."""
    try:
        while True:
            items.put(await stream.__anext__())
    except StopAsyncIteration:
        items.put(_END)
    except asyncio.CancelledError:  # closed meanwhile: wake a reader waiting in another thread
        items.put(StreamInterruptedError("the stream was closed"))
        raise
    except Exception as error:
        items.put(error)


class SyncStream(Generic[S_co]):
    """A stream opened by `AtomaSyncSDK`: `with` it and `for` over it, or `collect()` it.

    Leaving `with`, an exception or `close()` closes the response. A bare `for` (outside `with`)
    closes it too when the loop is left early (`break`). Once iterated, the stream is read on
    the client's loop as its events arrive and the chunks wait in a queue for this thread, so
    `usage`, `metrics` and `partial` may be ahead of the chunk in hand.
    """

    __slots__ = ("_done", "_items", "_managed", "_pumping", "_runner", "_stream")

    def __init__(self, runner: LoopThread, stream: S_co) -> None:
        self._runner = runner
        self._stream = stream
        self._managed = False
        self._done = False
        self._items: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._pumping: concurrent.futures.Future[None] | None = None

    def __iter__(self: SyncStream[EventStream[E, R]]) -> Iterator[E]:
        return self if self._managed else self._closing()

    def __next__(self: SyncStream[EventStream[E, R]]) -> E:
        if self._done:
            raise StopIteration
        if self._pumping is None:
            self._pumping = self._runner.submit(_pump(self._stream, self._items))
        item = _get(self._items)
        if item is _END or isinstance(item, BaseException):
            self._done = True
            if item is _END:
                raise StopIteration
            raise item
        return item  # type: ignore[no-any-return]

    def _closing(self: SyncStream[EventStream[E, R]]) -> Iterator[E]:
        try:
            yield from iter(self.__next__, _END)
        finally:  # also when the `for` loop drops this generator early
            self.close()

    def collect(self: SyncStream[EventStream[E, R]]) -> Result[R, AtomaError]:
        """Read the rest and return `Ok(whole answer)` (as the non-streamed call) or `Err(error)`."""
        if self._pumping is not None:  # iterated already: drain the queue first
            try:
                for _ in self:
                    pass
            except AtomaError as error:
                return Err(error)
        return self._runner.run(self._stream.collect())

    def close(self) -> None:
        """Close the response (idempotent)."""
        if self._pumping is not None:
            self._pumping.cancel()
        self._runner.close_stream(self._stream)

    def _read(self, get: Callable[[], T]) -> T:
        """The stream's state: read on its loop while it is open (reading folds the chunks handed
        out so far into the answer, which must not race the pump handing them out); once it is
        closed nothing changes it, so it is read here (also after the client closed)."""
        if self._stream.closed:
            return get()
        return self._runner.run(_on_loop(get))

    @property
    def usage(self) -> Usage | None:
        """Token usage from the final usage chunk (None until it arrives)."""
        return self._read(lambda: self._stream.usage)

    @property
    def metrics(self) -> StreamMetrics:
        """Time to first token, chunks, tokens per second, attempts."""
        return self._read(lambda: self._stream.metrics)

    @property
    def partial(self: SyncStream[EventStream[E, R]]) -> R:
        """Everything accumulated so far, as the non-streamed call would return it."""
        return self._read(lambda: self._stream.partial)

    @property
    def snapshot(self: SyncStream[ChatParseStream[Any]]) -> Any:
        """A `parse_stream`'s JSON received so far (`ChatParseStream.snapshot`)."""
        return self._read(lambda: self._stream.snapshot)

    @property
    def closed(self) -> bool:
        return self._stream.closed

    @property
    def headers(self) -> Mapping[str, str]:
        return self._stream.headers

    @property
    def request_id(self) -> str | None:
        return self._stream.request_id

    def __enter__(self) -> Self:
        self._managed = True
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __del__(self) -> None:
        stream = getattr(self, "_stream", None)
        if stream is None or stream.closed:
            return
        warnings.warn(f"unclosed {self!r}; use 'with' or close()", ResourceWarning, stacklevel=1, source=self)
        self._runner.close_stream(stream, wait=False)

    def __repr__(self) -> str:
        return f"<SyncStream of {self._stream!r}>"


def _get(items: queue.SimpleQueue[Any]) -> Any:
    """The next item, waiting in slices (so Ctrl-C is seen even if another thread took the signal)."""
    while True:
        try:
            return items.get(timeout=_WAIT_SLICE)
        except queue.Empty:
            pass


async def _on_loop(get: Callable[[], T]) -> T:
    return get()


class AtomaSyncSDK(_Client[Sync]):
    """The bundled client for synchronous code: `sdk.chat.create(...)` returns the response,
    `with sdk.chat.create_stream(...) as stream: for chunk in stream`, raising typed errors.

    Arguments as for `AtomaSDK` (`core=` to share an `AtomaCore`). One event-loop thread per
    client: share one client between threads (it is safe) rather than making one per call. Hooks
    run on that thread. Use `with`, or `close()` when done; a client dropped without closing is
    stopped when garbage-collected or at interpreter exit.
    """

    __slots__ = ()

    def _start_runner(self) -> LoopThread:
        return LoopThread()

    @property
    def _thread(self) -> LoopThread:
        runner = self._runner
        assert isinstance(runner, LoopThread)
        return runner

    def warm(self) -> None:
        """Get ready for the first call ahead of it: import the request path and stream code,
        resolve the server's name and open one pooled connection on the client's loop. Raises
        the typed error if the server cannot be reached."""
        import_request_path()  # here, not on the loop: the loop thread is never blocked by an import
        self._thread.run(self.core.warm()).unwrap()

    def close(self) -> None:
        """Close open streams, the HTTP session and the loop thread (idempotent). A call running
        in another thread meanwhile raises `APIConnectionError`; later calls `InvalidRequestError`."""
        self._thread.close(self.core)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
