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
    response: from the call's start until its value is ready, retries and waits included: a plain
        call's whole body, a stream's first event. On by default (600 s, openai-python's default
        timeout), so no call hangs forever, yet it never cuts a stream that has started (its
        iteration is bounded by `read` per read, and by `idle` if you set it). Used only while
        `total` is None: a `total` you set bounds the whole call on its own.
    total: the whole call, retries and a stream's iteration included; `timeout_ms` sets it.
    """

    connect: float | None = 10.0
    read: float | None = 120.0
    first_token: float | None = None
    idle: float | None = None
    response: float | None = 600.0
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


class HookContext(msgspec.Struct, kw_only=True):
    """What a hook sees. `request_headers` never contains the Authorization header; `body` is the
    encoded JSON request, messages included (hooks are your code: the SDK never logs it)."""

    operation_id: str
    attempt: int
    method: str
    url: str
    request_headers: Mapping[str, str]
    body: bytes
    status: int | None = None
    response_headers: Mapping[str, str] | None = None
    error: AtomaError | None = None


Hook = Callable[[HookContext], Union[None, Awaitable[None]]]


class Hooks(msgspec.Struct, frozen=True, kw_only=True):
    """Callbacks at the Atoma SDKs' hook points; each sync or async, called once per attempt.

    before_request: before each attempt is sent. after_success: a 2xx arrived (before its body
    is decoded). after_error: the attempt failed (status, transport or decode error).
    """

    before_request: Hook | None = None
    after_success: Hook | None = None
    after_error: Hook | None = None
