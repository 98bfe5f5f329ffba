"""Reading a response body: bounded in size, decoded with msgspec, stamped with `meta`."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Awaitable, Callable, Mapping, TypeVar

import aiohttp
import msgspec

from .errors import ResponseTooLargeError, ResponseValidationError
from .models.meta import ResponseMeta

if TYPE_CHECKING:
    from ._operation import CallContext

__all__ = ["decode_json_body", "json_response", "read_body", "stamp_meta"]

T = TypeVar("T")


async def read_body(response: aiohttp.ClientResponse, limit: int, read_timeout: float | None = None) -> bytes:
    """The whole body, refusing to hold more than `limit` bytes once decoded (a gzip body is
    counted as it inflates, not by its Content-Length), and giving up when a single read waits
    longer than `read_timeout` (aiohttp's own read timer misses some broken chunked framing)."""
    length = response.content_length
    if length is not None and length > limit:
        raise ResponseTooLargeError(f"response body of {length} bytes exceeds {limit}", limit=limit)
    content = response.content
    watchdog = None
    if read_timeout is not None and not content.is_eof():  # a body already in is read at once
        from ._errormap import timeout_error
        from ._watchdog import Watchdog

        watchdog = Watchdog(content, read_timeout, lambda: timeout_error("read", read_timeout), _always)
    parts: list[bytes] = []
    size = 0
    try:
        while True:
            piece = await content.readany()
            if not piece:
                break
            size += len(piece)
            if size > limit:
                raise ResponseTooLargeError(f"response body exceeds {limit} bytes", limit=limit)
            parts.append(piece)
            if watchdog is not None:
                watchdog.progress()
    finally:
        if watchdog is not None:
            watchdog.cancel()
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _always() -> bool:
    return True


def json_response(
    response_type: type[T], unwrap: Callable[[bytes, CallContext], bytes] | None = None
) -> Callable[[aiohttp.ClientResponse, CallContext], Awaitable[T]]:
    """A `handle` step that reads the whole body and decodes it as `response_type`; `unwrap`, if
    given, first turns the body into the JSON to decode (confidential compute decrypts there)."""
    decoder = msgspec.json.Decoder(response_type)

    async def handle(response: aiohttp.ClientResponse, ctx: CallContext) -> T:
        raw = await read_body(response, ctx.core.max_body_size, ctx.timeouts.read)
        if unwrap is not None:
            raw = unwrap(raw, ctx)
        value = decode_json_body(raw, decoder, response.status)
        elapsed = asyncio.get_running_loop().time() - ctx.started
        stamp_meta(value, ctx.attempts, ctx.request_id, response.headers, elapsed)
        return value

    return handle


def stamp_meta(
    value: object, attempts: int, request_id: str | None, headers: Mapping[str, str], elapsed: float
) -> None:
    """Attach a `ResponseMeta` to a model that carries one (a Struct with a `__dict__`)."""
    if hasattr(value, "__dict__"):
        value.__dict__["meta"] = ResponseMeta(
            attempts=attempts, request_id=request_id, headers=headers, elapsed=elapsed
        )


def decode_json_body(raw: bytes, decoder: msgspec.json.Decoder[T], status: int) -> T:
    """Decode a 2xx body, mapping a mismatch to `ResponseValidationError` with the raw bytes."""
    try:
        return decoder.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ResponseValidationError(
            f"response does not match the schema: {exc}", raw=raw, status_code=status
        ) from None
