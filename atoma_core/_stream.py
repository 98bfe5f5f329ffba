"""The streams users hold: `ChatCompletionStream` and `CompletionStream`, thin layers over the one
`EventStream` (`_events.py`) that name the item and result types and plug in the chunk decoder
and the accumulator, and the `handle` steps that open them. A confidential stream is the same
class with a decrypting decoder."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import msgspec

from ._accumulate import ChunkAccumulator, CompletionAccumulator
from ._body import read_body
from ._errormap import in_stream_error
from ._events import EventStream, StreamMetrics
from .errors import ResponseValidationError
from .models.chat import ChatCompletionChunk, ChatCompletionResponse
from .models.completions import CompletionChunk, CompletionResponse

if TYPE_CHECKING:
    import aiohttp

    from ._operation import CallContext, Handle

__all__ = [
    "ChatCompletionStream",
    "CompletionStream",
    "StreamMetrics",
    "chat_chunk_decoder",
    "completion_chunk_decoder",
    "open_chat_stream",
    "open_completion_stream",
]

S = TypeVar("S", bound="EventStream[Any, Any]")
chat_chunk_decoder = msgspec.json.Decoder(ChatCompletionChunk)
completion_chunk_decoder = msgspec.json.Decoder(CompletionChunk)


class ChatCompletionStream(EventStream[ChatCompletionChunk, ChatCompletionResponse]):
    """An open stream of `ChatCompletionChunk`s. Use `async with` and `async for`, or `collect()`.

    `partial` / `collect()` give the whole `ChatCompletionResponse` (tool calls merged), `usage`
    the final usage chunk's figures, `metrics` timings.
    """

    __slots__ = ()


class CompletionStream(EventStream[CompletionChunk, CompletionResponse]):
    """An open stream of legacy `CompletionChunk`s; `collect()` gives the `CompletionResponse`."""

    __slots__ = ()


def open_chat_stream(
    decoder: Callable[[CallContext], Callable[[bytes], ChatCompletionChunk]] | None = None,
) -> Handle[ChatCompletionStream]:
    """The `handle` step of a chat stream. `decoder(ctx)`, if given, makes the function that turns
    one event's data into a chunk for this call (confidential streams decrypt with the call's key)."""

    def make(response: aiohttp.ClientResponse, ctx: CallContext) -> ChatCompletionStream:
        decode = chat_chunk_decoder.decode if decoder is None else decoder(ctx)
        return ChatCompletionStream(response, ctx, decode, ChunkAccumulator())

    return open_event_stream(make)


def open_completion_stream(
    decoder: Callable[[CallContext], Callable[[bytes], CompletionChunk]] | None = None,
) -> Handle[CompletionStream]:
    """The `handle` step of a legacy completions stream; `decoder` as for `open_chat_stream`."""

    def make(response: aiohttp.ClientResponse, ctx: CallContext) -> CompletionStream:
        decode = completion_chunk_decoder.decode if decoder is None else decoder(ctx)
        return CompletionStream(response, ctx, decode, CompletionAccumulator())

    return open_event_stream(make)


def open_event_stream(make: Callable[[aiohttp.ClientResponse, CallContext], S]) -> Handle[S]:
    """The `handle` step of a streaming operation: check it is an event stream, wrap it with
    `make`, and wait for its first event (so an error in it can still be retried).

    A JSON body instead (a server that ignored `stream`, or sent its error with a 200) becomes the
    matching `APIError` or a `ResponseValidationError`; so does any other non-SSE content type.
    """

    async def handle(response: aiohttp.ClientResponse, ctx: CallContext) -> S:
        content_type = response.content_type
        if content_type in ("text/event-stream", "application/octet-stream") or not response.headers.get(
            "Content-Type"
        ):
            stream = make(response, ctx)
            await stream._first_event()
            stream._call = ctx.take_end()  # from here on, the stream's end is the call's end
            return stream
        raw = await read_body(response, ctx.core.max_body_size, ctx.timeouts.read)
        payload = None
        if content_type == "application/json":
            with contextlib.suppress(msgspec.DecodeError, RecursionError):
                payload = msgspec.json.decode(raw)
        error = in_stream_error(payload, raw, response.headers)
        if error is not None:
            raise error
        raise ResponseValidationError(
            f"expected text/event-stream, got {content_type}", raw=raw, status_code=response.status
        )

    return handle
