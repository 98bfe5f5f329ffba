"""Reading a response body: bounded in size, decoded with msgspec, stamped with `meta`."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Literal, Mapping, TypeVar, overload

import aiohttp
import msgspec

from .errors import APIConnectionError, ResponseTooLargeError, ResponseValidationError
from .models.meta import ResponseMeta

if TYPE_CHECKING:
    from ._operation import CallContext

__all__ = [
    "ERROR_BODY_PREFIX",
    "TOO_DEEP",
    "decode_json_body",
    "json_response",
    "read_body",
    "read_prefix",
    "stamp_meta",
]

T = TypeVar("T")
ERROR_BODY_PREFIX = 64 * 1024  # bytes of an error body kept for `.body` and its message
TOO_DEEP = "response JSON is nested too deeply to decode"


@overload
async def read_body(
    response: aiohttp.ClientResponse, limit: int, read_timeout: float | None = None
) -> bytes: ...
@overload
async def read_body(
    response: aiohttp.ClientResponse, limit: int, read_timeout: float | None, writable: Literal[True]
) -> bytes | bytearray: ...
async def read_body(
    response: aiohttp.ClientResponse, limit: int, read_timeout: float | None = None, writable: bool = False
) -> bytes | bytearray:
    """The whole body, refusing to hold more than `limit` bytes once decoded (a gzip body is
    counted as it inflates, not by its Content-Length), and giving up when a single read waits
    longer than `read_timeout` (aiohttp's own read timer misses some broken chunked framing).
    `writable`: a body in several pieces is joined into a `bytearray` (the same copy), whose memory
    its reader may reuse once it is done with it (a sealed answer's plaintext goes there); its
    pieces are taken as they came (`readchunk`), not joined first by aiohttp as `readany` and
    `read_nowait` do (one copy and one fresh buffer less)."""
    content = response.content
    if content.is_eof() and content.exception() is None and not writable:  # came with the headers
        body = content.read_nowait()
        if len(body) > limit:
            raise ResponseTooLargeError(f"response body exceeds {limit} bytes", limit=limit)
        return body
    length = response.content_length
    if length is not None and length > limit:
        raise ResponseTooLargeError(f"response body of {length} bytes exceeds {limit}", limit=limit)
    parts, complete = await _read_up_to(response, limit, read_timeout, writable)
    if not complete:
        raise ResponseTooLargeError(f"response body exceeds {limit} bytes", limit=limit)
    if len(parts) == 1:
        return parts[0]
    return bytearray().join(parts) if writable else b"".join(parts)


async def read_prefix(
    response: aiohttp.ClientResponse, limit: int = ERROR_BODY_PREFIX, read_timeout: float | None = None
) -> bytes:
    """At most the first `limit` bytes of the body, decoded: enough of an error body for `.body`
    and its message; the rest is never read (nor inflated), and the connection is then closed."""
    parts, complete = await _read_up_to(response, limit, read_timeout)
    if not complete:
        response.close()
    body = parts[0] if len(parts) == 1 else b"".join(parts)
    return body[:limit]


async def _read_up_to(
    response: aiohttp.ClientResponse, limit: int, read_timeout: float | None, as_they_came: bool = False
) -> tuple[list[bytes], bool]:
    """Read decoded pieces until the end, or until more than `limit` bytes came: (pieces, ended).
    `as_they_came`: each piece as aiohttp got it (`readchunk`), where `readany` joins all those
    buffered into one."""
    content = response.content
    watchdog = None
    if not content.is_eof():  # a body already in is read at once
        from ._watchdog import Watchdog

        watchdog = Watchdog(response, read_timeout, "read", lost=_lost)
    parts: list[bytes] = []
    size = 0
    try:
        while True:
            if as_they_came:
                piece, chunk_end = await content.readchunk()
                if not piece and chunk_end:  # the end of an HTTP chunk, not of the body
                    continue
            else:
                piece = await content.readany()
            if not piece:
                return parts, True
            size += len(piece)
            parts.append(piece)
            if size > limit:
                return parts, False
            if watchdog is not None:
                watchdog.progress()
    finally:
        if watchdog is not None:
            watchdog.cancel()


def _lost() -> APIConnectionError:
    return APIConnectionError("connection lost before the response body ended (broken framing)")


def json_response(
    response_type: type[T], decode: Callable[[list[bytes | bytearray], CallContext], T] | None = None
) -> Callable[[aiohttp.ClientResponse, CallContext], Awaitable[T]]:
    """A `handle` step that reads the whole body and decodes it as `response_type`; or, given
    `decode`, with that (confidential compute decrypts there, and maps its own failures).

    `decode` is handed the body in a one-item list, holding the only reference: it takes the
    body out, and may let go of it once it has read what it needs (a sealed answer's envelope),
    so that what it decodes next reuses that memory instead of faulting in fresh pages."""
    decoder = msgspec.json.Decoder(response_type)

    async def handle(response: aiohttp.ClientResponse, ctx: CallContext) -> T:
        if decode is None:
            raw = await read_body(response, ctx.core.max_body_size, ctx.timeouts.read)
            value = decode_json_body(raw, decoder, response.status)
        else:
            reading = read_body(response, ctx.core.max_body_size, ctx.timeouts.read, True)
            value = decode([await reading], ctx)  # the list holds the only reference to the body
        elapsed = asyncio.get_running_loop().time() - ctx.started
        stamp_meta(value, ctx.attempts, ctx.request_id, response.headers, elapsed, ctx.target)
        return value

    return handle


def stamp_meta(
    value: object,
    attempts: int,
    request_id: str | None,
    headers: Mapping[str, str],
    elapsed: float,
    target: Any = None,
) -> None:
    """Attach a `ResponseMeta` to a model that carries one (a Struct with a `__dict__`). A
    routed call's `target` (`_fallback.Target`) names the model and server that answered."""
    if hasattr(value, "__dict__"):
        if target is None:
            meta = ResponseMeta(attempts=attempts, request_id=request_id, headers=headers, elapsed=elapsed)
        else:
            meta = ResponseMeta(
                attempts=attempts,
                request_id=request_id,
                headers=headers,
                elapsed=elapsed,
                model=target.model,
                server_url=target.server_url,
            )
        value.__dict__["meta"] = meta


def decode_json_body(raw: bytes, decoder: msgspec.json.Decoder[T], status: int) -> T:
    """Decode a 2xx body, mapping a mismatch to `ResponseValidationError` with the raw bytes
    (JSON nested too deeply for the decoder too: msgspec raises `RecursionError` for it)."""
    try:
        return decoder.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ResponseValidationError(
            f"response does not match the schema: {exc}", raw=raw, status_code=status
        ) from None
    except RecursionError:
        raise ResponseValidationError(TOO_DEEP, raw=raw, status_code=status) from None
