"""Plain configuration values: retries, deadlines, per-call options and hooks.

Retry intervals are in milliseconds, as in the Atoma SDKs; `Timeouts` are in seconds, as in aiohttp.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable, Literal, Mapping, Union

import msgspec

if TYPE_CHECKING:
    from .errors import AtomaError

__all__ = [
    "BackoffStrategy",
    "CallInfo",
    "HookContext",
    "Hooks",
    "RequestOptions",
    "RetryConfig",
    "Timeouts",
]


class BackoffStrategy(msgspec.Struct, frozen=True):
    """Exponential backoff with full jitter: wait up to `initial * exponent**n`, capped.

    All values in milliseconds; `max_elapsed_time` bounds the whole retry sequence.
    """

    initial_interval: int = 500
    max_interval: int = 8_000
    exponent: float = 2.0
    max_elapsed_time: int = 60_000


class RetryConfig(msgspec.Struct, frozen=True, kw_only=True):
    """When and how to retry. On by default: 2 retries on 429/5xx gateway codes and connect errors.

    `max_retry_after_ms` caps a server's `Retry-After`: asked to wait longer, the SDK returns the
    error at once instead. `x-should-retry: true|false` from the server overrides `status_codes`.
    """

    strategy: Literal["backoff", "none"] = "backoff"
    backoff: BackoffStrategy = BackoffStrategy()
    retry_connection_errors: bool = True
    max_retries: int = 2
    status_codes: frozenset[int] = frozenset({429, 500, 502, 503, 504})
    max_retry_after_ms: int = 60_000

    @classmethod
    def none(cls) -> RetryConfig:
        """A config that never retries."""
        return cls(strategy="none", max_retries=0)

    @property
    def enabled(self) -> bool:
        return self.strategy == "backoff" and self.max_retries > 0


class Timeouts(msgspec.Struct, frozen=True, kw_only=True):
    """Deadlines in seconds; None disables one.

    connect: TCP/TLS connect. read: any single socket read (and waiting for headers).
    first_token: from sending a stream request to its first content chunk.
    idle: between two stream events, and from the headers to the first event (keep-alive
        comments do not count; time your own code spends between chunks does not count).
    total: the whole call, retries and a stream's iteration included.
    """

    connect: float | None = 10.0
    read: float | None = 120.0
    first_token: float | None = None
    idle: float | None = None
    total: float | None = None


class RequestOptions(msgspec.Struct, frozen=True, kw_only=True):
    """Per-call overrides. `timeout_ms` sets the total deadline; `timeouts` replaces them all.

    `extra_body` is merged into the JSON body, for fields a server supports beyond the schema.
    """

    retries: RetryConfig | None = None
    timeout_ms: int | None = None
    headers: Mapping[str, str] | None = None
    server_url: str | None = None
    timeouts: Timeouts | None = None
    extra_body: Mapping[str, Any] | None = None


class CallInfo(msgspec.Struct, kw_only=True):
    """What the call-level hooks see: one per call, shared by its attempts' `HookContext`s.

    `request` is the validated request Struct as it will be encoded (None for a body-less route;
    it holds the messages: hooks are your code, the SDK never logs it). At the end: `attempts`,
    `elapsed` (seconds from the call's start to its end, a stream's end included, on the clock of
    the stream's own metrics), then `value` (the decoded answer; for a stream, the stream) or
    `error` (the final `AtomaError`, or `asyncio.CancelledError`). `data` is the hooks' own
    per-call state.
    """

    operation_id: str
    method: str
    url: str
    request: Any = None
    attempts: int = 0
    elapsed: float = 0.0
    value: Any = None
    error: BaseException | None = None
    data: dict[Any, Any] = {}


class HookContext(msgspec.Struct, kw_only=True):
    """What a hook sees. `request_headers` never contains the Authorization header; `body` is the
    encoded JSON request, messages included (hooks are your code: the SDK never logs it).

    `before_request` may add, change or remove entries of `request_headers`: they are sent with
    this attempt only (trace context, say); Authorization cannot be set this way. `call` is the
    call's `CallInfo` when call-level hooks are installed (None otherwise).
    """

    operation_id: str
    attempt: int
    method: str
    url: str
    request_headers: dict[str, str]
    body: bytes
    status: int | None = None
    response_headers: Mapping[str, str] | None = None
    error: AtomaError | None = None
    call: CallInfo | None = None


Hook = Callable[[HookContext], Union[None, Awaitable[None]]]
CallHook = Callable[[CallInfo], None]


class Hooks(msgspec.Struct, frozen=True, kw_only=True):
    """Callbacks at the Atoma SDKs' hook points, plus two around the whole call.

    Per attempt, each sync or async: before_request: before each attempt is sent (may edit its
    headers). after_success: a 2xx arrived (before its body is decoded). after_error: the attempt
    failed (status, transport or decode error).

    Per call, plain functions (a stream's end may come from a `break`, a cancellation or the
    garbage collector, where nothing can be awaited): on_call_start: once, before the first
    attempt, with the validated request. on_call_end: once, with the outcome: at once for a
    decoded answer or a failure, when the stream ends for a stream (end of body, failure,
    `aclose`, cancellation, garbage collection). It runs for every call on_call_start saw. An
    on_call_start that raises fails the call (`UnexpectedClientError`); an on_call_end that
    raises is logged on the "atoma" logger, since the outcome is already decided.
    """

    before_request: Hook | None = None
    after_success: Hook | None = None
    after_error: Hook | None = None
    on_call_start: CallHook | None = None
    on_call_end: CallHook | None = None
