"""`ChatCompletionStream`: iterate chunks, accumulate them, enforce stream deadlines, always close.

Reads with `response.content.readany()` into the `SSEDecoder`. Per chunk the hot path is one
`msgspec` decode with a reused decoder and one accumulator update. Deadlines cost no per-read
task: `first_token` and `idle` are loop timers that, when they fire while we wait, inject a
`RequestTimeoutError` into the response's byte stream; `total` and `read` are aiohttp's timers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from typing import TYPE_CHECKING, Any, AsyncIterator, Mapping

import aiohttp
import msgspec

from ._accumulate import ChunkAccumulator
from ._body import read_body, stamp_meta
from ._errormap import RetryableError, describe, in_stream_error, transport_error
from ._sse import EventTooLarge, SSEDecoder, SSEEvent
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
from .models.chat import ChatCompletionChunk, ChatCompletionResponse, Usage
from .result import Err, Ok, Result

if TYPE_CHECKING:
    from types import TracebackType

    from ._request import CallContext

__all__ = ["ChatCompletionStream", "StreamMetrics", "open_chat_stream"]

log = logging.getLogger("atoma")
_chunk_decoder = msgspec.json.Decoder(ChatCompletionChunk)
_DONE = b"[DONE]"
_DRAIN_SECONDS = 0.05  # after [DONE]: wait this long for the body's end, so the connection is reused


class StreamMetrics(msgspec.Struct, gc=False):
    """Figures of a stream: seconds to the first content chunk, chunks, tokens per second, retries."""

    attempts: int
    chunks: int
    time_to_first_token: float | None
    elapsed: float
    completion_tokens: int | None
    tokens_per_second: float | None


class ChatCompletionStream:
    """An open stream of `ChatCompletionChunk`s. Use `async with` and `async for`, or `collect()`.

    Accumulates as it goes: `partial` / `collect()` give the whole response, `usage` the final
    usage chunk's figures, `metrics` timings. Leaving `async with`, `break`, an exception or a
    cancellation closes the response; `aclose()` is idempotent.
    """

    def __init__(self, response: aiohttp.ClientResponse, ctx: CallContext) -> None:
        self._response = response
        self._content = response.content
        self._decoder = SSEDecoder(ctx.core.max_event_size)
        self._accumulator = ChunkAccumulator()
        self._pending: list[bytes | SSEEvent] = []  # decoded events, the next one last
        self._loop = asyncio.get_running_loop()
        self._started = ctx.started
        self._first_token_at: float | None = None
        self._ended_at: float | None = None
        self._chunks = 0
        self._closed = False
        self._waiting = False
        self._timers: list[asyncio.TimerHandle] = []
        self._timeouts = ctx.timeouts
        self._idle = ctx.timeouts.idle
        self._first_token = ctx.timeouts.first_token
        self._mark = 0.0
        self.headers: Mapping[str, str] = response.headers
        self.request_id = ctx.request_id
        self.attempts = ctx.attempts
        if self._first_token is not None:
            self._timers.append(self._loop.call_at(self._started + self._first_token, self._first_token_due))
        if self._idle is not None:
            self._mark = self._loop.time()
            self._timers.append(self._loop.call_at(self._mark + self._idle, self._idle_check))

    # ------------------------------------------------------------------ iteration

    def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        return self

    async def __anext__(self) -> ChatCompletionChunk:
        if self._idle is not None:
            self._mark = self._loop.time()
        pending = self._pending
        while True:
            if pending:
                item = pending.pop()
                if item.__class__ is bytes:
                    if item == _DONE:
                        await self._finish_after_done()
                        raise StopAsyncIteration
                    try:  # inlined (not a method call): this runs once per chunk
                        chunk: ChatCompletionChunk = _chunk_decoder.decode(item)
                    except msgspec.ValidationError as exc:
                        raise self._fail(self._not_a_chunk(item, exc)) from None
                    except msgspec.DecodeError:
                        raise self._fail(self._malformed(item)) from None
                    self._accumulator.add(chunk)
                    self._chunks += 1
                    if self._first_token_at is None and chunk.choices:
                        self._check_first_token(chunk)
                    return chunk
                self._event(item)  # type: ignore[arg-type]
                continue
            if self._closed:
                raise StopAsyncIteration
            data = await self._read()
            if not data:
                self._end_of_body()
                raise StopAsyncIteration
            self._feed(data)
            pending = self._pending

    async def _read(self) -> bytes:
        self._waiting = True
        try:
            return await self._content.readany()
        except asyncio.CancelledError:
            self._close()
            raise
        except Exception as exc:
            raise self._fail(self._read_error(exc)) from None
        finally:
            self._waiting = False

    def _feed(self, data: bytes) -> None:
        try:
            events = self._decoder.feed(data)
        except EventTooLarge as exc:
            raise self._fail(ResponseTooLargeError(str(exc), limit=self._decoder.max_event_size)) from None
        events.reverse()  # popped from the end, one by one
        self._pending = events

    async def _first_event(self) -> None:
        """Wait until the first event is buffered, without handing it out. An error event or a
        dropped connection this early reached no user code, so it is raised as `RetryableError`
        and the request path may retry the call."""
        try:
            while not self._pending:
                data = await self._read()
                if not data:
                    return  # an empty body: iteration reports it as truncated
                self._feed(data)
        except StreamInterruptedError as exc:
            dropped = APIConnectionError(f"connection dropped before the first event: {exc.message}")
            raise RetryableError(dropped) from None
        except RequestTimeoutError as exc:
            if exc.phase != "read":  # first_token and total are deadlines: never retried
                raise
            exc.partial = None
            raise RetryableError(exc) from None
        first = self._pending[-1]
        if isinstance(first, SSEEvent):
            error = self._event_error(first) if first.event == "error" else None
        else:
            error = self._error_object(first)
        if error is not None:
            self._close()
            raise RetryableError(error)

    def _error_object(self, data: bytes) -> APIError | None:
        """The APIError an event's data carries instead of a chunk, if it does."""
        try:
            _chunk_decoder.decode(data)
        except msgspec.ValidationError:
            return in_stream_error(msgspec.json.decode(data), data, self.headers)
        except msgspec.DecodeError:
            pass  # iteration reports a malformed frame
        return None

    def _check_first_token(self, chunk: ChatCompletionChunk) -> None:
        delta = chunk.choices[0].delta
        if delta.content or delta.tool_calls or delta.reasoning_content or delta.refusal:
            self._first_token_at = self._loop.time()

    @staticmethod
    def _malformed(data: bytes) -> StreamInterruptedError:
        return StreamInterruptedError(f"malformed event data: {data[:200]!r}")

    def _not_a_chunk(self, data: bytes, exc: Exception) -> AtomaError:
        payload = msgspec.json.decode(data)
        error = in_stream_error(payload, data, self.headers)
        if error is not None:
            return error
        return ResponseValidationError(f"stream event is not a chat completion chunk: {exc}", raw=data)

    def _event(self, event: SSEEvent) -> None:
        """A named event: `error` ends the stream with a typed error; a plain message is a chunk."""
        if event.event == "error":
            raise self._fail(self._event_error(event))
        if event.event == "message":
            self._pending.append(event.data)  # same as a plain data event; id/retry unused

    def _event_error(self, event: SSEEvent) -> APIError:
        try:
            payload = msgspec.json.decode(event.data)
        except msgspec.DecodeError:
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
        if not self._accumulator.finished():
            error = StreamTruncatedError("stream ended before every choice got a finish_reason")
            raise self._fail(error)
        self._closed = True
        self._pending.clear()
        self._cancel_timers()
        if release:
            self._response.release()
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
        self._close()
        error.partial = self._accumulator.snapshot()
        error.attempts = self.attempts
        log.debug("stream %s failed after %d chunks: %s", self.request_id, self._chunks, describe(error))
        return error

    def _close(self) -> None:
        if self._ended_at is None:
            self._ended_at = self._loop.time()
        self._closed = True
        self._pending.clear()  # events read past a failure are never handed out
        self._cancel_timers()
        self._response.close()

    def _cancel_timers(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    # ------------------------------------------------------------------ deadlines

    def _first_token_due(self) -> None:
        if self._first_token_at is None and not self._closed:
            self._inject(
                RequestTimeoutError(
                    f"no content within first_token timeout ({self._first_token:g} s)",
                    phase="first_token",
                    timeout=self._first_token,
                )
            )

    def _idle_check(self) -> None:
        if self._closed:
            return
        assert self._idle is not None
        now = self._loop.time()
        due = self._mark + self._idle
        if self._waiting and now >= due:
            self._inject(
                RequestTimeoutError(
                    f"no event within idle timeout ({self._idle:g} s)", phase="idle", timeout=self._idle
                )
            )
            return
        self._timers.append(self._loop.call_at(due if due > now else now + self._idle, self._idle_check))

    def _inject(self, error: RequestTimeoutError) -> None:
        self._content.set_exception(error)

    # ------------------------------------------------------------------ public surface

    @property
    def usage(self) -> Usage | None:
        """Token usage from the final usage chunk (None if the server sent none)."""
        return self._accumulator.usage

    @property
    def partial(self) -> ChatCompletionResponse:
        """Everything accumulated so far, as a response."""
        return self._accumulator.snapshot()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def metrics(self) -> StreamMetrics:
        end = self._ended_at if self._ended_at is not None else self._loop.time()
        ttft = None if self._first_token_at is None else self._first_token_at - self._started
        usage = self._accumulator.usage
        tokens = usage.completion_tokens if usage is not None else None
        rate = None
        if tokens is not None and self._first_token_at is not None and end > self._first_token_at:
            rate = tokens / (end - self._first_token_at)
        return StreamMetrics(
            attempts=self.attempts,
            chunks=self._chunks,
            time_to_first_token=ttft,
            elapsed=end - self._started,
            completion_tokens=tokens,
            tokens_per_second=rate,
        )

    async def collect(self) -> Result[ChatCompletionResponse, AtomaError]:
        """Drain the rest and return the whole response, as `chat_create` would, or the error."""
        try:
            async for _ in self:
                pass
        except AtomaError as error:
            return Err(error)
        response = self._accumulator.snapshot()
        elapsed = (self._ended_at or self._loop.time()) - self._started
        stamp_meta(response, self.attempts, self.request_id, self.headers, elapsed)
        return Ok(response)

    async def aclose(self) -> None:
        """Close the response and return nothing to the pool half-read (idempotent)."""
        if not self._closed:
            self._close()

    async def __aenter__(self) -> ChatCompletionStream:
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

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<ChatCompletionStream {state} chunks={self._chunks} request_id={self.request_id!r}>"


async def open_chat_stream(response: aiohttp.ClientResponse, ctx: CallContext) -> ChatCompletionStream:
    """The `handle` step of a streaming operation: check it is an event stream, wrap it, and wait
    for its first event (so an error in it can still be retried: nothing reached the user yet).

    A JSON body instead (a server that ignored `stream`, or sent its error with a 200) becomes the
    matching `APIError` or a `ResponseValidationError`; so does any other non-SSE content type.
    """
    content_type = response.content_type
    if content_type in ("text/event-stream", "application/octet-stream") or not response.headers.get(
        "Content-Type"
    ):
        stream = ChatCompletionStream(response, ctx)
        await stream._first_event()
        return stream
    raw = await read_body(response, ctx.core.max_body_size)
    payload = None
    if content_type == "application/json":
        with contextlib.suppress(msgspec.DecodeError):
            payload = msgspec.json.decode(raw)
    error = in_stream_error(payload, raw, response.headers)
    if error is not None:
        raise error
    raise ResponseValidationError(
        f"expected text/event-stream, got {content_type}", raw=raw, status_code=response.status
    )
