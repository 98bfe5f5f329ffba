"""ONE event stream for every streamed operation: read, SSE, deadlines, first-event retry, drain,
close, metrics. What the events mean is plugged in: a `decode` step (bytes of one event's data
-> an item; confidential streams decrypt here) and an `Accumulator` (items -> the whole answer).

Reads with `response.content.readany()` into the `SSEDecoder`, and decodes a read's events
together: per item the hot path is one decode in a tight loop and a pop, and the accumulator takes
a read's items at once. Deadlines cost no per-read timer: `read` and `idle` are
`Watchdog` marks (and `total` its absolute deadline), `first_token` one loop timer; when due
while we wait, they inject a `RequestTimeoutError` into the response's byte stream.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
import weakref
from typing import (
    TYPE_CHECKING,
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
    Generic,
    Mapping,
    NoReturn,
    Protocol,
    Sequence,
    TypeVar,
)

import aiohttp
import msgspec

from ._body import TOO_DEEP, stamp_meta
from ._errormap import describe, in_stream_error, transport_error
from ._operation import RetryableError
from ._sse import EventTooLarge, SSEDecoder, SSEEvent
from ._watchdog import Watchdog
from .errors import (
    APIConnectionError,
    APIError,
    AtomaError,
    RequestTimeoutError,
    ResponseTooLargeError,
    ResponseValidationError,
    StreamInterruptedError,
    StreamTruncatedError,
    error_class_for,
)
from .models.meta import PlainData
from .models.usage import Usage
from .result import Err, Ok, Result

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Self

    from ._operation import CallContext

__all__ = ["Accumulator", "EventStream", "StreamMetrics"]

log = logging.getLogger("atoma")
E = TypeVar("E")
R = TypeVar("R")
E_contra = TypeVar("E_contra", contravariant=True)
R_co = TypeVar("R_co", covariant=True)
_DONE = b"[DONE]"
_DRAIN_SECONDS = 0.05  # after [DONE]: wait this long for the body's end, so the connection is reused


class Accumulator(Protocol[E_contra, R_co]):
    """Folds a stream's items into the whole answer, as the non-streamed operation returns it."""

    @property
    def usage(self) -> Any: ...

    def extend(self, items: Sequence[E_contra]) -> None:
        """Fold these items in, in order."""
        ...

    def is_token(self, item: E_contra) -> bool:
        """Whether this item carries generated content (it stops the first-token clock)."""
        ...

    def finished(self) -> bool:
        """Whether every choice got its finish_reason (else the end of the body is a truncation)."""
        ...

    def snapshot(self) -> R_co: ...


class StreamMetrics(PlainData, gc=False):
    """Figures of a stream: seconds to the first content chunk, chunks, tokens per second, retries."""

    attempts: int
    chunks: int
    time_to_first_token: float | None
    elapsed: float
    completion_tokens: int | None
    tokens_per_second: float | None


class EventStream(Generic[E, R]):
    """An open stream of items. Use `async with` and `async for`, or `collect()`.

    Accumulates as it goes: `partial` / `collect()` give the whole answer, `usage` the final
    usage figures, `metrics` timings. Leaving `async with`, `break` inside it, an exception or a
    cancellation closes the response; `aclose()` is idempotent. However it ends, that end is the
    call's end for the call-level hooks (`Hooks.on_call_end`), once.
    """

    # Slots: thousands of streams may be open at once; each holds only these.
    __slots__ = (
        "__weakref__",
        "_accumulator",
        "_added",
        "_batch",
        "_call",
        "_chunks",
        "_closed",
        "_content",
        "_decode",
        "_decoder",
        "_end",
        "_ended_at",
        "_first_token",
        "_first_token_at",
        "_idle",
        "_loop",
        "_managed",
        "_max_stream_size",
        "_read",
        "_ready",
        "_release",
        "_response",
        "_room",
        "_served",
        "_started",
        "_timeouts",
        "_token_at",
        "_unread",
        "_waiting",
        "attempts",
        "headers",
        "request_id",
    )

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        ctx: CallContext,
        decode: Callable[[bytes], E],
        accumulator: Accumulator[E, R],
    ) -> None:
        self._response = response
        self._content = response.content
        self._decode = decode
        # What a decoder holds for a read's events and can rebuild (a confidential stream's cipher
        # context, ~1.3 KB): let go once a read's events are decoded, so an idle stream keeps none.
        self._release: Callable[[], None] | None = getattr(decode, "release", None)
        self._decoder = SSEDecoder(ctx.core.max_event_size, message_ids=False)  # ids are unused
        self._accumulator = accumulator
        self._ready: list[E] = []  # decoded, not handed out yet: the next one last
        self._batch: list[E] = []  # the read they came in, in order, until folded into the answer
        self._added = 0  # how many of `_batch` are folded in
        self._unread: list[Any] = []  # events read but not decoded yet (the first read's rest)
        self._end: bytes | Exception | None = None  # [DONE] or the error that ends the stream, once reached
        self._loop = asyncio.get_running_loop()
        self._started = ctx.started
        self._first_token_at: float | None = None  # when the first content chunk was read ...
        self._token_at = -1  # ... and its place in `_batch`, until it is handed out
        self._ended_at: float | None = None
        self._chunks = 0
        self._closed = False
        self._managed = False  # inside `async with`: leaving the block closes, not leaving a loop
        self._waiting = False
        self._first_token: asyncio.TimerHandle | None = None
        self._timeouts = ctx.timeouts
        self._idle: Watchdog | None = None
        self._max_stream_size = self._room = ctx.core.max_stream_size  # bytes of body allowed
        self.headers: Mapping[str, str] = response.headers
        self.request_id = ctx.request_id
        self.attempts = ctx.attempts
        self._call: CallContext | None = None  # set once handed out, if call-level hooks watch
        self._served: Any = None  # what answered (a route's target), for `collect()`'s meta
        timeouts = ctx.timeouts
        # Timers hold the stream weakly: an abandoned stream must still be collected (and warn).
        me = weakref.ref(self)
        if timeouts.first_token is not None:
            due = self._started + timeouts.first_token
            self._first_token = self._loop.call_at(due, _first_token_due, me)
        # The read deadline also probes for a lost connection, even with no read timeout, and
        # enforces `total` through the iteration (the request path's timer ends with `handle`).
        self._read = Watchdog(
            response,
            timeouts.read,
            "read",
            waiter=me,
            lost=_stream_lost,
            until=ctx.deadline,
            total=timeouts.total,
            loop=self._loop,
        )
        if timeouts.idle is not None:  # both due: nothing came at all, a read timeout
            self._idle = Watchdog(
                response, timeouts.idle, "idle", waiter=me, defer_to=self._read, loop=self._loop
            )

    # ------------------------------------------------------------------ iteration
    #
    # A read's events are decoded together (`_take`) into `_ready`; `__anext__` hands them out one
    # by one, and they are folded into the answer (`_catch_up`) once the last one is out, or when
    # the answer is asked for. So per item the hot path is a pop, and `partial`, `usage` and
    # `metrics` count exactly the items handed out. What ends the stream ([DONE], an error) waits
    # in `_end` until the items before it are out.

    def __aiter__(self) -> AsyncIterator[E]:
        # Inside `async with` the stream is its own iterator (a loop may break and resume). A bare
        # `async for` gets a wrapper that closes the stream when the loop drops it (break, error).
        return self if self._managed else _ClosingIterator(self)

    async def __anext__(self) -> E:
        ready = self._ready
        if not ready:  # end the stream if its end came, else decode what is read, or read on
            if self._idle is not None:
                self._idle.progress()
            while not ready:
                if self._end is not None:
                    await self._reach_end()
                if self._closed:
                    raise StopAsyncIteration
                if self._unread:
                    events, self._unread = self._unread, []
                else:
                    data = await self._read_more()
                    if not data:
                        self._end_of_body()
                        raise StopAsyncIteration
                    events = self._feed(data)
                self._take(events)
                ready = self._ready
        item = ready.pop()
        if not ready:
            self._catch_up()
        return item

    async def _reach_end(self) -> NoReturn:
        end, self._end = self._end, None
        if isinstance(end, Exception):
            self._raise(end)
        await self._finish_after_done()  # [DONE]
        raise StopAsyncIteration

    def _raise(self, error: Exception) -> NoReturn:
        """End the stream with this error (not an `AtomaError`: a bug, that the request path
        reports as `UnexpectedClientError`)."""
        if isinstance(error, AtomaError):
            raise self._fail(error)
        self._close(error)
        raise error

    async def _read_more(self) -> bytes:
        self._read.progress()
        self._waiting = True
        try:
            data = await self._content.readany()
        except asyncio.CancelledError as cancelled:
            self._close(cancelled)
            raise
        except Exception as exc:
            raise self._fail(self._read_error(exc)) from None
        finally:
            self._waiting = False
        self._room -= len(data)
        if self._room < 0:
            raise self._fail(self._too_large())
        return data

    def _feed(self, data: bytes) -> list[Any]:
        try:
            return self._decoder.feed(data)
        except EventTooLarge as exc:
            raise self._fail(ResponseTooLargeError(str(exc), limit=self._decoder.max_event_size)) from None

    def _take(self, events: list[Any]) -> None:
        """Decode a read's events into `_ready`, up to the stream's end if it is among them.
        Only a plain, valid data event decodes; anything else raises, and `_odd` says what it is."""
        decode = self._decode
        items: list[E] = []
        append = items.append
        rest = iter(events)
        while True:
            try:
                for data in rest:
                    append(decode(data))
                break
            except Exception as exc:
                end = self._odd(data, exc)
                if end is not None:
                    self._end = end
                    break
        if self._release is not None:
            self._release()
        if items:
            self._chunks += len(items)
            if self._first_token_at is None:
                self._find_first_token(items)
            self._batch = items
            self._ready = items[::-1]  # popped from the end

    def _find_first_token(self, items: list[E]) -> None:
        """Mark when the first content came (the `first_token` deadline is met then), and where
        it is in its read: `metrics` counts it only once it is handed out."""
        is_token = self._accumulator.is_token
        for at, item in enumerate(items):
            if is_token(item):
                self._first_token_at = self._loop.time()
                self._token_at = at
                return

    def _odd(self, data: bytes | SSEEvent, exc: Exception) -> bytes | Exception | None:
        """What an event that did not decode as an item is: a named event (a message event is
        plain data already, `message_ids=False`), [DONE] or an error. Returns the stream's end,
        or None to go on."""
        if isinstance(data, SSEEvent):
            return self._event_error(data) if data.event == "error" else None  # others: not ours
        if data == _DONE:
            return _DONE
        return self._decode_error(data, exc)

    def _catch_up(self) -> None:
        """Fold the items handed out so far into the answer."""
        batch = self._batch
        out = len(batch) - len(self._ready)
        if out == len(batch):  # all of them: the usual case, once per read
            self._accumulator.extend(batch[self._added :] if self._added else batch)
            self._batch = []
            self._added = 0
            self._token_at = -1
        elif out > self._added:
            self._accumulator.extend(batch[self._added : out])
            self._added = out

    async def _first_event(self) -> None:
        """Wait for the first item and decode it (once), without handing it out. Any failure
        this early reached no user code: an error event or a dropped connection is raised as
        `RetryableError` so the request path may retry the call; a bad event is an `Err`."""
        try:
            while not self._ready and self._end is None:
                if not self._unread:
                    data = await self._read_more()
                    if not data:
                        return  # an empty body: iteration reports it as truncated
                    self._unread = self._feed(data)
                events = self._unread
                if self._first_token is None:  # the first item need not wait for its read's rest
                    self._take(events[:1])
                    self._unread = events[1:]
                else:  # ... but a token in it must be seen, or the first_token deadline fires
                    self._take(events)
                    self._unread = []
        except StreamInterruptedError as exc:
            dropped = APIConnectionError(f"connection dropped before the first event: {exc.message}")
            raise RetryableError(dropped) from None
        except RequestTimeoutError as exc:
            if exc.phase != "read":  # first_token, idle and total are deadlines: never retried
                raise
            exc.partial = None
            raise RetryableError(exc) from None
        end = self._end
        if self._ready or not isinstance(end, Exception):
            return
        self._end = None
        if isinstance(end, APIError):  # an error sent as the first event
            self._close()
            raise RetryableError(end)
        self._raise(end)

    def _folded(self) -> Accumulator[E, R]:
        """The accumulator, with every item handed out so far folded in."""
        if self._batch:
            self._catch_up()
        return self._accumulator

    def _too_large(self) -> ResponseTooLargeError:
        limit = self._max_stream_size
        message = f"stream exceeds {limit} bytes (max_stream_size)"
        return ResponseTooLargeError(message, limit=limit)

    def _decode_error(self, data: bytes, exc: Exception) -> Exception:
        """What a failed decode means: a malformed frame, an error object, or a wrong shape."""
        if isinstance(exc, AtomaError):
            return exc
        if isinstance(exc, RecursionError):  # msgspec's answer to JSON nested too deeply
            return ResponseValidationError(f"stream event: {TOO_DEEP}", raw=data)
        if isinstance(exc, msgspec.ValidationError):
            try:
                payload = msgspec.json.decode(data)
            except RecursionError:
                return ResponseValidationError(f"stream event: {TOO_DEEP}", raw=data)
            error = in_stream_error(payload, data, self.headers)
            if error is not None:
                return error
            return ResponseValidationError(f"stream event does not match the schema: {exc}", raw=data)
        if isinstance(exc, msgspec.DecodeError):
            return StreamInterruptedError(f"malformed event data: {data[:200]!r}")
        return exc  # a bug: raised as it is, and the request path reports UnexpectedClientError

    def _event_error(self, event: SSEEvent) -> APIError:
        try:
            payload = msgspec.json.decode(event.data)
        except (msgspec.DecodeError, RecursionError):
            payload = None
        error = in_stream_error(payload, event.data, self.headers)
        if error is None:
            message = event.data.decode("utf-8", "replace") or "error event"
            error = error_class_for(500)(message, status_code=500, body=message, headers=self.headers)
        return error

    # ------------------------------------------------------------------ endings

    def _end_of_body(self, release: bool = True) -> None:
        """EOF or [DONE]: a choice without a finish_reason means the generation was cut short."""
        self._ended_at = self._loop.time()
        if not self._folded().finished():
            error = StreamTruncatedError("stream ended before every choice got a finish_reason")
            raise self._fail(error)
        self._closed = True
        self._unread = []  # events after [DONE]: never decoded
        self._cancel_timers()
        if release:
            self._response.release()
        if self._call is not None:
            self._end_call(None)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "stream %s ended: %d chunks in %.1f ms",
                self.request_id,
                self._chunks,
                (self._ended_at - self._started) * 1000,
            )

    async def _finish_after_done(self) -> None:
        """`data: [DONE]`: stop reading. Wait briefly for the body's end so the connection can
        go back to the pool; a server that keeps the body open gets its connection closed."""
        self._end_of_body(release=False)
        content = self._content
        deadline = self._loop.time() + _DRAIN_SECONDS
        try:
            while not content.at_eof():
                remaining = deadline - self._loop.time()
                if remaining <= 0:
                    break
                await asyncio.wait_for(content.readany(), remaining)
        except asyncio.CancelledError:
            self._response.close()
            raise
        except (asyncio.TimeoutError, aiohttp.ClientError, OSError, AtomaError):
            pass
        if content.at_eof():
            self._response.release()
        else:
            self._response.close()

    def _read_error(self, exc: BaseException) -> AtomaError:
        if isinstance(exc, AtomaError):  # injected by a deadline timer
            return exc
        error = transport_error(exc, self._timeouts)
        if isinstance(error, RequestTimeoutError):
            return error
        return StreamInterruptedError(f"stream interrupted: {error.message}")

    def _fail(self, error: AtomaError) -> AtomaError:
        """Close, attach what arrived so far to the error; the caller raises it."""
        error.partial = self._folded().snapshot()
        error.attempts = self.attempts
        self._close(error)
        log.debug("stream %s failed after %d chunks: %s", self.request_id, self._chunks, describe(error))
        return error

    def _close(self, error: BaseException | None = None) -> None:
        if self._ended_at is None:
            self._ended_at = self._loop.time()
        self._closed = True
        self._folded()
        unseen = len(self._ready)  # items read past a failure or a close: never handed out
        self._chunks -= unseen
        if self._token_at >= len(self._batch) - unseen:
            self._first_token_at = None  # so was the first content: no time to first token
        self._ready = []
        self._batch = []
        self._unread = []
        self._added = 0
        self._end = None
        self._cancel_timers()
        self._response.close()
        if self._call is not None:
            self._end_call(error)

    def _end_call(self, error: BaseException | None) -> None:
        """This stream's end is its call's end: run the on_call_end hooks, once."""
        call, self._call = self._call, None
        if call is not None:
            ended = self._ended_at if self._ended_at is not None else self._loop.time()
            call.end(ended, self, error)

    def _cancel_timers(self) -> None:
        if self._first_token is not None:
            self._first_token.cancel()
            self._first_token = None
        self._read.cancel()
        if self._idle is not None:
            self._idle.cancel()

    # ------------------------------------------------------------------ public surface

    @property
    def usage(self) -> Usage | None:
        """Token usage from the final usage chunk (None if the server sent none)."""
        return self._folded().usage  # type: ignore[no-any-return]

    @property
    def partial(self) -> R:
        """The chunks handed out so far, folded into what the non-streamed operation returns."""
        return self._folded().snapshot()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def metrics(self) -> StreamMetrics:
        end = self._ended_at if self._ended_at is not None else self._loop.time()
        ttft = None if self._first_token_at is None else self._first_token_at - self._started
        chunks = self._chunks - len(self._ready)  # decoded, less those not handed out yet
        usage = self._folded().usage
        tokens = usage.completion_tokens if usage is not None else None
        rate = None
        if tokens is not None and self._first_token_at is not None and end > self._first_token_at:
            rate = tokens / (end - self._first_token_at)
        return StreamMetrics(
            attempts=self.attempts,
            chunks=chunks,
            time_to_first_token=ttft,
            elapsed=end - self._started,
            completion_tokens=tokens,
            tokens_per_second=rate,
        )

    async def collect(self) -> Result[R, AtomaError]:
        """Drain the rest and return the whole answer, as the non-streamed call would, or the error."""
        try:
            async for _ in self:
                pass
        except AtomaError as error:
            return Err(error)
        response = self._folded().snapshot()
        elapsed = (self._ended_at or self._loop.time()) - self._started
        stamp_meta(response, self.attempts, self.request_id, self.headers, elapsed)
        if self._served is not None:
            self._served.apply(getattr(response, "meta", None))
        return Ok(response)

    async def aclose(self) -> None:
        """Close the response and return nothing to the pool half-read (idempotent)."""
        if not self._closed:
            self._close()

    async def __aenter__(self) -> Self:
        self._managed = True
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if getattr(self, "_closed", True):
            return
        _warn(f"unclosed {self!r}; use 'async with' or aclose()", ResourceWarning, source=self)
        self._cancel_timers()
        if not self._loop.is_closed():
            self._response.close()  # synchronous; schedules nothing of ours
            if self._call is not None:  # hooks run from the loop, not inside the collector
                self._loop.call_soon(self._end_call, None)
        elif self._call is not None:
            self._end_call(None)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<{type(self).__name__} {state} chunks={self._chunks} request_id={self.request_id!r}>"


class _ClosingIterator(Generic[E]):
    """What a bare `async for` over a stream iterates: when the loop lets go of it (a `break`, an
    exception in its body), the stream is closed, so nothing waits for the garbage collector.
    One extra call per item; `async with` avoids even that."""

    __slots__ = ("_stream",)

    def __init__(self, stream: EventStream[E, Any]) -> None:
        self._stream = stream

    def __aiter__(self) -> _ClosingIterator[E]:
        return self

    def __anext__(self) -> Awaitable[E]:
        return self._stream.__anext__()

    def __del__(self) -> None:
        stream = self._stream
        if not stream._closed:
            stream._close()


def _first_token_due(ref: weakref.ReferenceType[EventStream[Any, Any]]) -> None:
    stream = ref()
    if stream is not None and stream._first_token_at is None and not stream._closed:
        seconds = stream._timeouts.first_token
        message = f"no content within first_token timeout ({seconds:g} s)"
        stream._content.set_exception(RequestTimeoutError(message, phase="first_token", timeout=seconds))


def _stream_lost() -> AtomaError:
    return StreamInterruptedError("stream interrupted: connection lost mid-body (broken framing)")
