"""The streams users hold: `ChatCompletionStream` and `CompletionStream`, thin layers over the one
`EventStream` (`_events.py`) that name the item and result types and plug in the chunk decoder
and the accumulator. A confidential stream is the same class with a decrypting decoder."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import msgspec

from ._accumulate import ChunkAccumulator, CompletionAccumulator
from ._events import EventStream, StreamMetrics, open_event_stream
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
    "open_chat_stream",
    "open_completion_stream",
]

chat_chunk_decoder = msgspec.json.Decoder(ChatCompletionChunk)
_completion_chunk_decoder = msgspec.json.Decoder(CompletionChunk)


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


def open_completion_stream() -> Handle[CompletionStream]:
    """The `handle` step of a legacy completions stream."""

    def make(response: aiohttp.ClientResponse, ctx: CallContext) -> CompletionStream:
        return CompletionStream(response, ctx, _completion_chunk_decoder.decode, CompletionAccumulator())

    return open_event_stream(make)
