"""`chat_parse_stream`: a chat stream that also keeps the JSON received so far (`snapshot`) and
validates the whole answer at the end (`collect()` -> `ParsedChatCompletion[T]`).

Not a second stream: it is the one `EventStream`, with the chat operation's own path, body
builder and decoder; the decoder also keeps each chunk's content (or, in "tool" mode, tool
argument) text, which `snapshot` feeds to an incremental parser (`_partial_json`) up to the
chunks handed out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Generic, TypeVar

from atoma_core._accumulate import ChunkAccumulator
from atoma_core._events import EventStream
from atoma_core._request import call
from atoma_core._stream import chat_chunk_decoder, open_event_stream
from atoma_core.errors import InvalidRequestError
from atoma_core.models.chat import ChatCompletionChunk
from atoma_core.models.parsed import ParsedChatCompletion, parsed_from
from atoma_core.result import Err

from ._parse import ParseMode, ask_for, parse_response
from ._partial_json import PartialJSON

if TYPE_CHECKING:
    import aiohttp

    from atoma_core._operation import CallContext, Operation
    from atoma_core.config import RequestOptions
    from atoma_core.core import AtomaCore
    from atoma_core.errors import AtomaError
    from atoma_core.models.chat import ChatCompletionRequest
    from atoma_core.result import Result
    from atoma_core.types import ChatCompletionRequestParam

    from ._schema import OutputSpec

__all__ = ["ChatParseStream", "chat_parse_stream", "confidential_chat_parse_stream"]

T = TypeVar("T")


class _ParsedAccumulator(ChunkAccumulator):
    """The chat accumulator, whose whole answer is a `ParsedChatCompletion` (parsed at the end)."""

    __slots__ = ()

    def snapshot(self) -> ParsedChatCompletion[Any]:
        return parsed_from(super().snapshot())


def _collecting(decode: Callable[[bytes], ChatCompletionChunk], texts: list[str], tool_mode: bool) -> Any:
    """`decode`, also keeping each chunk's JSON text (choice 0's content; in "tool" mode its
    first tool call's arguments; "" if none), one entry per chunk, for the snapshot to parse
    once the chunk is handed out."""
    keep = texts.append

    def content(data: bytes) -> ChatCompletionChunk:
        chunk = decode(data)
        choices = chunk.choices
        keep((choices[0].delta.content or "") if choices and not choices[0].index else "")
        return chunk

    def arguments(data: bytes) -> ChatCompletionChunk:
        chunk = decode(data)
        text = ""
        for choice in chunk.choices:
            for piece in (choice.delta.tool_calls or ()) if not choice.index else ():
                if not piece.index and piece.function is not None and piece.function.arguments:
                    text += piece.function.arguments
        keep(text)
        return chunk

    return arguments if tool_mode else content


class ChatParseStream(EventStream[ChatCompletionChunk, ParsedChatCompletion[T]], Generic[T]):
    """A chat stream (the same chunks, deadlines, errors, usage and metrics as
    `chat_create_stream`) that keeps `snapshot`, the JSON value received so far, and whose
    `collect()` returns the answer validated into `T`."""

    __slots__ = ("_fed", "_mode", "_parser", "_spec", "_texts")

    _spec: OutputSpec
    _mode: str
    _parser: PartialJSON
    _texts: list[str]  # each decoded chunk's JSON text, in order
    _fed: int  # how many of them the parser has had

    @property
    def snapshot(self) -> Any:
        """The JSON value of the chunks handed out so far (choice 0's content; in "tool" mode its
        tool call's arguments), parsed leniently (open strings, arrays and objects shown as far
        as they go) as plain dicts and lists; None before any. It is updated in place as chunks
        arrive: `copy.deepcopy` it to keep one."""
        handed = self._chunks - len(self._ready)  # as `metrics` counts them
        fed = self._fed
        if fed + 1 == handed:  # read after every chunk: the usual case
            self._fed = handed
            text = self._texts[fed]
            if text:
                return self._parser.take(text)
        elif fed < handed:
            feed = self._parser.feed
            for text in self._texts[fed:handed]:
                if text:
                    feed(text)
            self._fed = handed
        return self._parser.value()

    async def collect(self) -> Result[ParsedChatCompletion[T], AtomaError]:
        """Drain the rest and return the answer with `message.parsed`, or the error: the stream's
        own, or `LengthFinishReasonError` / `ContentFilterFinishReasonError` /
        `OutputValidationError` as from `chat_parse`."""
        result = await super().collect()
        if isinstance(result, Err):
            return result
        response = result.value
        return parse_response(response, self._spec, self._mode, response.usage)  # type: ignore[return-value]


def _operation(base: Operation[Any, Any], decoder: Any, spec: OutputSpec, mode: str) -> Operation[Any, Any]:
    """The chat stream operation `base` (plain or confidential), opening a `ChatParseStream`."""

    def make(response: aiohttp.ClientResponse, ctx: CallContext) -> ChatParseStream[Any]:
        decode: Callable[[bytes], ChatCompletionChunk] = (
            chat_chunk_decoder.decode if decoder is None else decoder(ctx)
        )
        texts: list[str] = []
        keeping = _collecting(decode, texts, mode == "tool")
        stream: ChatParseStream[Any] = ChatParseStream(response, ctx, keeping, _ParsedAccumulator())
        stream._parser = PartialJSON()
        stream._texts = texts
        stream._fed = 0
        stream._spec = spec
        stream._mode = mode
        return stream

    return base.answered_by(open_event_stream(make))


async def _open(
    core: AtomaCore,
    request: Any,
    response_format: Any,
    options: RequestOptions | None,
    mode: str,
    confidential: bool,
) -> Result[ChatParseStream[Any], AtomaError]:
    asked = ask_for(request, response_format, mode)
    if isinstance(asked, InvalidRequestError):
        return Err(asked)
    spec, body = asked
    if confidential:
        from ._confidential import _chat_event_decoder, _chat_stream_operation

        operation = _operation(_chat_stream_operation(), _chat_event_decoder, spec, mode)
    else:
        from ._chat import _stream_operation

        operation = _operation(_stream_operation(), None, spec, mode)
    return await call(core, operation, body, options)


async def chat_parse_stream(
    core: AtomaCore,
    request: ChatCompletionRequest | ChatCompletionRequestParam,
    response_format: type[T],
    *,
    options: RequestOptions | None = None,
    mode: ParseMode = "json_schema",
) -> Result[ChatParseStream[T], AtomaError]:
    """Stream an answer shaped like `response_format` (as `chat_parse` asks for it): `Ok` with a
    `ChatParseStream` once the first event arrives. Iterate it like `chat_create_stream`'s; read
    `stream.snapshot` at any point; `await stream.collect()` gives `ParsedChatCompletion[T]`."""
    return await _open(core, request, response_format, options, mode, False)


async def confidential_chat_parse_stream(
    core: AtomaCore,
    request: ChatCompletionRequest | ChatCompletionRequestParam,
    response_format: type[T],
    *,
    options: RequestOptions | None = None,
    mode: ParseMode = "json_schema",
) -> Result[ChatParseStream[T], AtomaError]:
    """`chat_parse_stream` over confidential chat: every event is decrypted before it is parsed."""
    return await _open(core, request, response_format, options, mode, True)
