"""Map failures to the error tree: HTTP error bodies of any shape, in-stream error objects,
aiohttp and socket exceptions (naming the timeout phase)."""

from __future__ import annotations

import asyncio
from typing import Any, Mapping

import aiohttp
import msgspec

from .config import Timeouts
from .errors import (
    APIConnectionError,
    APIError,
    AtomaError,
    InvalidRequestError,
    RequestTimeoutError,
    TimeoutPhase,
    UnexpectedClientError,
    error_class_for,
    status_for_code,
)

__all__ = [
    "api_error_from",
    "describe",
    "in_stream_error",
    "timeout_error",
    "transport_error",
    "unexpected_error",
]


def api_error_from(status: int, reason: str | None, headers: Mapping[str, str], raw: bytes) -> APIError:
    """Build the `APIError` subclass for an error status from any body: Atoma or OpenAI
    envelope, `{"detail": ...}`, plain text or HTML."""
    text = raw.decode("utf-8", "replace")
    code: str | None = None
    message: str | None = None
    err_type: str | None = None
    param: str | None = None
    try:
        parsed = msgspec.json.decode(raw) if raw else None
    except (msgspec.DecodeError, RecursionError):  # nested too deeply: as good as not JSON
        parsed = None
    if isinstance(parsed, dict):
        err = parsed.get("error", parsed)
        if isinstance(err, dict):
            message = _text(err.get("message")) or _text(err.get("detail"))
            code = _text(err.get("code"))
            err_type = _text(err.get("type"))
            param = _text(err.get("param"))
        elif isinstance(err, str):
            message = err
        if message is None:
            message = _text(parsed.get("message")) or _text(parsed.get("detail"))
    if not message:
        message = f"HTTP {status} {reason or ''}".rstrip()
    if 300 <= status < 400:
        message = f"{message}: redirect to {headers.get('Location', '?')} not followed"
    return error_class_for(status)(
        message,
        status_code=status,
        code=code,
        body=text,
        headers=headers,
        request_id=headers.get("x-request-id"),
        type=err_type,
        param=param,
    )


def _text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return msgspec.json.encode(value).decode() if not isinstance(value, int) else str(value)


def transport_error(exc: BaseException, timeouts: Timeouts) -> AtomaError:
    """Map an aiohttp or socket failure to the error tree, naming the timeout phase."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return timeout_error("connect", timeouts.connect)
    if isinstance(exc, aiohttp.SocketTimeoutError):
        return timeout_error("read", timeouts.read)
    if isinstance(exc, asyncio.TimeoutError):
        return timeout_error("total", timeouts.total)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return APIConnectionError(f"cannot connect to {exc.host}:{exc.port}: {exc.os_error}")
    if isinstance(exc, aiohttp.InvalidURL):
        return InvalidRequestError(f"invalid URL: {exc}")
    if isinstance(exc, (aiohttp.ClientError, OSError)):
        detail = str(exc) or type(exc).__name__
        return APIConnectionError(f"connection error: {detail}")
    return unexpected_error(exc)


def unexpected_error(exc: BaseException) -> AtomaError:
    """An exception nobody foresaw, as `UnexpectedClientError` with it as `__cause__` (an
    `AtomaError` is returned as it is)."""
    if isinstance(exc, AtomaError):
        return exc
    error = UnexpectedClientError(f"unexpected {type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error


def timeout_error(phase: TimeoutPhase, seconds: float | None) -> RequestTimeoutError:
    limit = f" ({seconds:g} s)" if seconds is not None else ""
    return RequestTimeoutError(f"{phase} timeout{limit} exceeded", phase=phase, timeout=seconds)


def in_stream_error(payload: Any, raw: bytes, headers: Mapping[str, str]) -> APIError | None:
    """An `{"error": ...}` object inside a stream, as the matching `APIError` subclass."""
    if not isinstance(payload, dict) or "error" not in payload:
        return None
    err = payload["error"]
    codes = (err.get("status"), err.get("code"), err.get("type")) if isinstance(err, dict) else ()
    status = status_for_code(*codes) or 500
    error = api_error_from(status, None, headers, raw)
    return error


def describe(error: AtomaError) -> str:
    """An error for a log line: class, status, code, phase; never its message, which may echo
    the request back."""
    if isinstance(error, APIError):
        return f"{type(error).__name__} {error.status_code} {error.code or ''}".rstrip()
    if isinstance(error, RequestTimeoutError):
        return f"{type(error).__name__} ({error.phase})"
    return type(error).__name__
