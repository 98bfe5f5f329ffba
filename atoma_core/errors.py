"""The SDK's error tree, written out once.

Every failure a function can return (as `Err`) or a stream can raise is an `AtomaError`:

    AtomaError
    ├── APIError                      the server answered with an error (HTTP status or in-stream)
    │   ├── BadRequestError           400
    │   ├── AuthenticationError       401
    │   ├── InsufficientBalanceError  402
    │   ├── PermissionDeniedError     403
    │   ├── NotFoundError             404
    │   ├── UnprocessableEntityError  422
    │   ├── LockedError               423
    │   ├── TooEarlyError             425
    │   ├── RateLimitError            429
    │   └── InternalServerError       >= 500
    ├── APIConnectionError            no usable answer: refused, reset, DNS, TLS
    │   └── RequestTimeoutError       a deadline passed (`.phase` says which)
    ├── InvalidRequestError           rejected before sending (also a ValueError)
    ├── ResponseValidationError       the answer is not what the API promises (`.raw`)
    │   ├── ResponseTooLargeError     a body or an event over the configured limit
    │   └── ConfidentialComputeError  a confidential message could not be opened (`.reason`)
    ├── StreamError                   a stream ended badly after it started
    │   ├── StreamInterruptedError    the connection dropped or a frame was malformed
    │   └── StreamTruncatedError      clean end of body, but no finish_reason
    ├── CircuitOpenError              a breaker is open for that server and model (`.until`)
    ├── LimiterUnavailableError       the shared rate limiter (Redis) cannot be reached
    ├── NodeKeyVerificationError      a node's key is not the one it committed on chain (`.reason`)
    ├── StructuredOutputError         a typed answer could not be had (`chat_parse`)
    │   ├── LengthFinishReasonError   cut off by max tokens (`finish_reason` "length")
    │   ├── ContentFilterFinishReasonError  stopped by a content filter
    │   └── OutputValidationError     the content does not match the type (`.raw`)
    ├── ToolExecutionError            a tool failed with on_tool_error="raise" (`.run`, `.call`)
    ├── ToolLoopError                 still calling tools after max_rounds (`.run`)
    ├── MissingDependencyError        an optional extra is not installed (the message names it)
    └── UnexpectedClientError         a bug or an unforeseen exception (see `__cause__`)

`asyncio.CancelledError` is never wrapped. Messages never contain the bearer token.
"""

from __future__ import annotations

from typing import Any, Literal, Mapping

__all__ = [
    "APIConnectionError",
    "APIError",
    "AtomaError",
    "AuthenticationError",
    "BadRequestError",
    "CircuitOpenError",
    "ConfidentialComputeError",
    "ContentFilterFinishReasonError",
    "CryptoFailure",
    "InsufficientBalanceError",
    "InternalServerError",
    "InvalidRequestError",
    "LengthFinishReasonError",
    "LimiterUnavailableError",
    "LockedError",
    "MissingDependencyError",
    "NodeKeyFailure",
    "NodeKeyVerificationError",
    "NotFoundError",
    "OutputValidationError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestTimeoutError",
    "ResponseTooLargeError",
    "ResponseValidationError",
    "StreamError",
    "StreamInterruptedError",
    "StreamTruncatedError",
    "StructuredOutputError",
    "TimeoutPhase",
    "TooEarlyError",
    "ToolExecutionError",
    "ToolLoopError",
    "UnexpectedClientError",
    "UnprocessableEntityError",
    "error_class_for",
]

TimeoutPhase = Literal["connect", "read", "first_token", "idle", "response", "total"]
"""Which deadline a `RequestTimeoutError` passed (`Timeouts` names them all)."""
CryptoFailure = Literal["key", "encoding", "tag", "hash"]
"""Why a confidential answer could not be opened: a bad node `key`, bad base64 `encoding`, a
failed AES-GCM `tag` (tampered with), or a `response_hash` that does not match."""
NodeKeyFailure = Literal[
    "mismatch", "no_commitment", "not_pinned", "evidence", "unavailable", "invalid_answer"
]
"""Why a node's key was refused (`NodeKeyVerificationError.reason`)."""


class AtomaError(Exception):
    """Base of every SDK error.

    `attempts` counts the HTTP attempts made (retries + 1). `partial` is what a stream had
    accumulated when this error ended it, typed as the stream's whole answer (a
    `ChatCompletionResponse` for chat streams, a `CompletionResponse` for legacy completions);
    None outside streams. `attempted` holds the failures of the fallback targets tried before
    this one (`FallbackFailure`s: model, server_url, error), in order; empty without fallbacks.
    """

    message: str
    attempts: int = 1
    partial: Any = None
    attempted: tuple[Any, ...] = ()

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class APIError(AtomaError):
    """The server answered with an error status, or sent an error object inside a stream."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str | None = None,
        body: str = "",
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
        type: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.body = body
        self.headers: Mapping[str, str] = headers if headers is not None else {}
        self.request_id = request_id
        self.type = type
        self.param = param

    def __str__(self) -> str:
        code = f" {self.code}" if self.code else ""
        rid = f" (request id {self.request_id})" if self.request_id else ""
        return f"{self.status_code}{code}: {self.message}{rid}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status_code={self.status_code}, code={self.code!r}, "
            f"message={self.message!r}, request_id={self.request_id!r})"
        )


class BadRequestError(APIError):
    """400: the request was malformed or refused (REQUEST_ERROR, FIAT_PAYMENTS_ONLY)."""


class AuthenticationError(APIError):
    """401: missing or invalid bearer token."""


class InsufficientBalanceError(APIError):
    """402: the account balance does not cover the request."""


class PermissionDeniedError(APIError):
    """403: the token may not use this resource."""


class NotFoundError(APIError):
    """404: unknown path or resource."""


class UnprocessableEntityError(APIError):
    """422: the server understood the JSON but rejected its content."""


class LockedError(APIError):
    """423: the stack is locked (confidential routes)."""


class TooEarlyError(APIError):
    """425: the stack is unavailable (UNAVAILABLE_STACK)."""


class RateLimitError(APIError):
    """429: too many requests, or Atoma could not reach a node."""


class InternalServerError(APIError):
    """>= 500: the server or a proxy in front of it failed."""


class APIConnectionError(AtomaError):
    """The request got no usable answer: refused, reset, DNS or TLS failure."""


class RequestTimeoutError(APIConnectionError):
    """A deadline passed. `phase` is connect, read, first_token, idle, response or total."""

    def __init__(self, message: str, *, phase: TimeoutPhase, timeout: float | None = None) -> None:
        super().__init__(message)
        self.phase: TimeoutPhase = phase
        self.timeout = timeout


class InvalidRequestError(AtomaError, ValueError):
    """The request or the configuration was rejected before anything was sent.

    Functions return it as `Err`; constructors (`AtomaCore`, `RequestOptions`, `Timeouts`...)
    raise it, and it is also a `ValueError` so that either `except` idiom catches it.
    """


class ResponseValidationError(AtomaError):
    """A response (or a stream chunk) that is not what the API promises. `raw` holds its bytes."""

    def __init__(self, message: str, *, raw: bytes = b"", status_code: int | None = None) -> None:
        super().__init__(message)
        self.raw = raw
        self.status_code = status_code


class ResponseTooLargeError(ResponseValidationError):
    """A response body or a single stream event exceeded the configured maximum (`limit` bytes)."""

    def __init__(self, message: str, *, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class ConfidentialComputeError(ResponseValidationError):
    """A confidential message could not be opened, so nothing of it is used.

    `reason`: "key" (a public key that is not a usable X25519 key), "encoding" (bad base64 or
    nonce), "tag" (AES-GCM authentication failed: tampered, or sealed with another key) or "hash"
    (the plaintext does not match its BLAKE2b hash). Neither the message nor `raw` holds key
    material or plaintext.
    """

    def __init__(self, message: str, *, reason: CryptoFailure) -> None:
        super().__init__(message)
        self.reason: CryptoFailure = reason


class StreamError(AtomaError):
    """A stream that had started ended badly; `partial` holds what arrived."""

    def __init__(self, message: str, *, partial: Any = None) -> None:
        super().__init__(message)
        self.partial = partial


class StreamInterruptedError(StreamError):
    """The connection dropped mid-stream, or a frame could not be decoded."""


class StreamTruncatedError(StreamError):
    """The body ended cleanly but a choice never got a `finish_reason` (a failed generation)."""


class CircuitOpenError(AtomaError):
    """The circuit breaker of this server and model is open: nothing was sent. `until` is when it
    half-opens (`time.time()` seconds), `retry_after` the seconds left then."""

    def __init__(
        self, message: str, *, server_url: str, model: str | None, until: float, retry_after: float
    ) -> None:
        super().__init__(message)
        self.server_url = server_url
        self.model = model
        self.until = until
        self.retry_after = retry_after


class LimiterUnavailableError(AtomaError):
    """The shared rate limiter could not be asked (Redis down) and it is configured to fail."""


class NodeKeyVerificationError(AtomaError):
    """The key `/v1/nodes/lock` handed out for a node could not be shown to be that node's own, so
    nothing was encrypted to it and nothing was sent to the confidential route (fail closed).

    `reason`: "mismatch" (the node committed another key), "no_commitment" (no commitment by that
    node at the current rotation), "not_pinned" (a `PinnedKeys` verifier does not know the node),
    "evidence" (your evidence check refused it), "unavailable" (the source of truth could not be
    read in time; `__cause__` says why) or "invalid_answer" (it answered something malformed).
    `node_small_id` names the node. The message never holds a token or a private key.
    """

    def __init__(self, message: str, *, node_small_id: int, reason: NodeKeyFailure) -> None:
        super().__init__(message)
        self.node_small_id = node_small_id
        self.reason: NodeKeyFailure = reason


class StructuredOutputError(AtomaError):
    """A structured answer (`chat_parse`) could not be had. `response` is the answer as it came
    (a `ParsedChatCompletion`, `parsed` None), `content` its text (or the tool call's arguments),
    `usage` the tokens of every attempt."""

    def __init__(self, message: str, *, response: Any = None, content: str | None = None, usage: Any = None):
        super().__init__(message)
        self.response = response
        self.content = content
        self.usage = usage


class LengthFinishReasonError(StructuredOutputError):
    """The answer was cut off (`finish_reason` "length"): raise max_tokens. `content` keeps the part."""


class ContentFilterFinishReasonError(StructuredOutputError):
    """The server's content filter stopped the answer (`finish_reason` "content_filter")."""


class OutputValidationError(StructuredOutputError):
    """The content is not valid JSON for the requested type. `raw` holds the content; the message
    is the decoder's (e.g. "Expected `int`, got `str` - at `$.age`")."""

    def __init__(self, message: str, *, raw: str, response: Any = None, usage: Any = None) -> None:
        super().__init__(message, response=response, content=raw, usage=usage)
        self.raw = raw


class ToolExecutionError(AtomaError):
    """A tool call failed (the tool raised, or its name or arguments were bad) and the caller
    asked for `on_tool_error="raise"`. `call` is that call (its `error` the cause), `run` the
    run so far (a `ToolRun`)."""

    def __init__(self, message: str, *, run: Any, call: Any) -> None:
        super().__init__(message)
        self.run = run
        self.call = call


class ToolLoopError(AtomaError):
    """The model still called tools after `max_rounds` rounds. `run` is the run so far."""

    def __init__(self, message: str, *, run: Any) -> None:
        super().__init__(message)
        self.run = run


class MissingDependencyError(AtomaError):
    """An optional dependency is not installed; the message says which extra to install."""

    def __init__(self, message: str, *, package: str, extra: str) -> None:
        super().__init__(message)
        self.package = package
        self.extra = extra


class UnexpectedClientError(AtomaError):
    """An exception nobody foresaw; the original is `__cause__`."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: InsufficientBalanceError,
    403: PermissionDeniedError,
    404: NotFoundError,
    422: UnprocessableEntityError,
    423: LockedError,
    425: TooEarlyError,
    429: RateLimitError,
}

# In-stream errors carry no HTTP status: map Atoma codes and OpenAI types to one.
_STATUS_BY_CODE: dict[str, int] = {
    "REQUEST_ERROR": 400,
    "FIAT_PAYMENTS_ONLY": 400,
    "invalid_request_error": 400,
    "AUTH_ERROR": 401,
    "authentication_error": 401,
    "invalid_api_key": 401,
    "BALANCE_ERROR": 402,
    "insufficient_quota": 402,
    "permission_error": 403,
    "NOT_FOUND": 404,
    "not_found_error": 404,
    "LOCKED": 423,
    "UNAVAILABLE_STACK": 425,
    "TOO_MANY_REQUESTS": 429,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "INTERNAL_ERROR": 500,
    "server_error": 500,
    "api_error": 500,
    "NOT_IMPLEMENTED": 501,
    "SERVICE_UNAVAILABLE": 503,
    "overloaded_error": 503,
}


def status_for_code(*codes: Any) -> int | None:
    """The HTTP status that an in-stream error's code or type stands for, if known."""
    for code in codes:
        if isinstance(code, int) and 400 <= code <= 599:
            return code
        if isinstance(code, str):
            if code.isdigit() and 400 <= int(code) <= 599:
                return int(code)
            status = _STATUS_BY_CODE.get(code)
            if status is not None:
                return status
    return None


def error_class_for(status: int) -> type[APIError]:
    """The `APIError` subclass for an HTTP status."""
    if status >= 500:
        return InternalServerError
    return _BY_STATUS.get(status, APIError)
