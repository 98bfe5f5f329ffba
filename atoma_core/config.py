"""Plain configuration values: retries, deadlines, per-call options and hooks, checked once.

Retry intervals are in milliseconds, as in the Atoma SDKs; `Timeouts` are in seconds, as in aiohttp.
Each value is checked when it is built (msgspec's `__post_init__`), never per request: a wrong
one raises `InvalidRequestError` (also a `ValueError`) naming the field and what it must be.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Literal, Mapping, Sequence, Union

import msgspec
from msgspec.structs import force_setattr

from .errors import InvalidRequestError

if TYPE_CHECKING:
    from .errors import AtomaError

__all__ = [
    "BackoffStrategy",
    "Breaker",
    "CallInfo",
    "CircuitChange",
    "Fallback",
    "Hedge",
    "HookContext",
    "Hooks",
    "RequestOptions",
    "RetryConfig",
    "Timeouts",
    "coerce_options",
]

_INF = math.inf  # NaN fails every comparison, so `0 < x < _INF` also refuses it
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # an RFC 9110 token
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # control characters other than HTAB
_HOST_LABEL = re.compile(r"[a-z0-9_-]+")  # urlsplit lowercases the host; `_` for container names


def _not(name: str, what: str, value: object) -> InvalidRequestError:
    """The error for a value of the wrong type or range: numbers are shown, other values only typed."""
    shown = repr(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    return InvalidRequestError(f"{name} must be {what}, not {shown or type(value).__name__}")


def number(name: str, value: object, what: str, *, positive: bool = False) -> float:
    """`value` if it is a finite number >= 0 (> 0 if `positive`); a bool is not a number here."""
    if (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and (value > 0 if positive else value >= 0)
        and value < _INF
    ):
        return value
    raise _not(name, what, value)


def whole_number(name: str, value: object, what: str, *, minimum: int = 0) -> int:
    """`value` if it is an int >= `minimum` (a bool or a float is refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _not(name, what, value)
    return value


def check_header_value(name: object, value: object) -> None:
    """Refuse a header that would break or inject into the request: the name must be an RFC 9110
    token, the value a str without CR, LF or other control characters. The value is never echoed."""
    if not isinstance(name, str) or _HEADER_NAME.fullmatch(name) is None:
        shown = f" {name!r}" if isinstance(name, str) and name.isprintable() and len(name) < 64 else ""
        what = "a non-empty RFC 9110 token (letters, digits, !#$%&'*+-.^_`|~)"
        raise InvalidRequestError(f"header name{shown} is not {what}")
    if not isinstance(value, str):
        raise InvalidRequestError(f"header {name!r} must be a str, not {type(value).__name__}")
    if _CONTROL.search(value) is not None:
        raise InvalidRequestError(f"header {name!r} contains a CR, LF, NUL or other control character")


def check_headers(headers: object, name: str) -> Mapping[str, str]:
    """`headers` if it is a mapping of valid header names to valid str values."""
    if not isinstance(headers, Mapping):
        raise _not(name, "a mapping of header names to str values", headers)
    for key, value in headers.items():
        check_header_value(key, value)
    return headers


def token_problem(token: str) -> str | None:
    """Why a bearer token cannot be sent, or None. A header value must be ASCII (RFC 9110 allows
    Latin-1 at most; aiohttp would send UTF-8) without control characters."""
    if _CONTROL.search(token) is not None:
        return "contains a CR, LF, NUL or other control character"
    if not token.isascii():
        return "contains non-ASCII characters (a header value must be ASCII)"
    return None


def normalise_server_url(url: str) -> str:
    """Drop a trailing slash and a trailing `/v1` (operation paths start with `/v1`)."""
    url = url.rstrip("/")
    return url[:-3] if url.endswith("/v1") else url


def shown_url(url: str, path: str = "") -> str:
    """`url` as logs and error messages show it: scheme, host and port, with whatever path a base
    URL adds (where RPC providers put their API key) shown as `/...`; `path`, the operation's own
    path at the end of `url`, is kept."""
    from urllib.parse import urlsplit

    parts = urlsplit(str(url))
    base = parts.path[: len(parts.path) - len(path)] if path and parts.path.endswith(path) else parts.path
    host = parts.netloc.rpartition("@")[2]  # never credentials (check_server_url refuses them anyway)
    return f"{parts.scheme}://{host}{'/...' if base.strip('/') else ''}{path}"


def check_server_url(url: object, name: str) -> str:
    """`url` normalised, if it is an http(s) base URL with a valid host and port and no
    credentials, query or fragment. The error never repeats the URL: it may hold a secret."""
    if not isinstance(url, str):
        raise _not(name, "a str such as 'https://api.atoma.network'", url)
    problem = _url_problem(url)
    if problem is not None:
        raise InvalidRequestError(f"invalid {name}: {problem}")
    return normalise_server_url(url)


def _url_problem(url: str) -> str | None:
    if not url:
        return "it is empty (leave it unset, or None, for the default server)"
    if not url.isprintable() or " " in url:
        return "it contains whitespace or a control character"
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed or misplaced [IPv6] bracket
        return "its host cannot be parsed (an IPv6 address goes in [brackets])"
    if parts.scheme not in ("http", "https"):
        return "it must start with http:// or https://"
    if "@" in parts.netloc:
        return "it contains credentials (user:password@): pass the token as bearer_auth instead"
    if "?" in url or "#" in url:
        return "it contains a query (?) or a fragment (#): give a base URL such as https://host/prefix"
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        return "its port must be a number from 1 to 65535"
    host = parts.hostname
    if not host:
        return "it has no host"
    if "[" in parts.netloc:
        import ipaddress

        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return "the IPv6 address in [brackets] is not valid"
        return None
    return _host_problem(host)


def _host_problem(host: str) -> str | None:
    """Why a host name cannot be resolved as written (labels of 1-63 characters, 253 in all)."""
    name = host[:-1] if host.endswith(".") else host  # a fully qualified name may end with a dot
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            return "its host name cannot be encoded (IDNA)"
    labels = name.split(".")
    if len(name) > 253 or any(len(label) > 63 for label in labels):
        return "its host name is too long (a label may have 63 characters, the name 253)"
    if not all(_HOST_LABEL.fullmatch(label) for label in labels):
        return "its host name has an empty label or a character not allowed in host names"
    return None


_RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})  # the default, known to be valid


class BackoffStrategy(msgspec.Struct, frozen=True):
    """Exponential backoff with full jitter: wait up to `initial * exponent**n`, capped.

    All values in milliseconds; `max_elapsed_time` bounds the whole retry sequence.
    """

    initial_interval: int = 500
    max_interval: int = 8_000
    exponent: float = 2.0
    max_elapsed_time: int = 60_000

    def __post_init__(self) -> None:
        what = "a number of milliseconds >= 0"
        number("BackoffStrategy.initial_interval", self.initial_interval, what)
        number("BackoffStrategy.max_interval", self.max_interval, what)
        number("BackoffStrategy.max_elapsed_time", self.max_elapsed_time, what)
        number("BackoffStrategy.exponent", self.exponent, "a positive number", positive=True)


class RetryConfig(msgspec.Struct, frozen=True, kw_only=True):
    """When and how to retry. On by default: 2 retries on 429/5xx gateway codes and connect errors.

    `max_retry_after_ms` caps a server's `Retry-After`: asked to wait longer, the SDK returns the
    error at once instead. `x-should-retry: true|false` from the server overrides `status_codes`
    (any iterable of HTTP status codes; stored as a frozenset). Where a RetryConfig is expected
    (`AtomaCore(retry_config=)`, `RequestOptions(retries=)`), a plain int n means
    `RetryConfig(max_retries=n)`, as openai-python's `max_retries=n` does.
    """

    strategy: Literal["backoff", "none"] = "backoff"
    backoff: BackoffStrategy = BackoffStrategy()
    retry_connection_errors: bool = True
    max_retries: int = 2
    status_codes: frozenset[int] = _RETRIED_STATUSES
    max_retry_after_ms: int = 60_000

    def __post_init__(self) -> None:
        if self.strategy not in ("backoff", "none"):
            what = "'backoff' or 'none'"
            raise InvalidRequestError(f"RetryConfig.strategy must be {what}, not {self.strategy!r}")
        if not isinstance(self.backoff, BackoffStrategy):
            raise _not("RetryConfig.backoff", "a BackoffStrategy", self.backoff)
        if not isinstance(self.retry_connection_errors, bool):
            raise _not("RetryConfig.retry_connection_errors", "True or False", self.retry_connection_errors)
        whole_number("RetryConfig.max_retries", self.max_retries, "a whole number >= 0")
        number("RetryConfig.max_retry_after_ms", self.max_retry_after_ms, "a number of milliseconds >= 0")
        codes = self.status_codes
        if codes is _RETRIED_STATUSES:
            return
        if type(codes) is not frozenset:
            if isinstance(codes, (str, bytes)) or not hasattr(codes, "__iter__"):
                raise _not("RetryConfig.status_codes", "a set of HTTP status codes", codes)
            force_setattr(self, "status_codes", frozenset(codes))
        for code in self.status_codes:
            if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
                raise _not("RetryConfig.status_codes", "a set of HTTP status codes (100-599)", code)

    @classmethod
    def none(cls) -> RetryConfig:
        """A config that never retries."""
        return cls(strategy="none", max_retries=0)

    @property
    def enabled(self) -> bool:
        return self.strategy == "backoff" and self.max_retries > 0


def as_retry_config(value: object, name: str) -> RetryConfig:
    """`value` as a RetryConfig: an int n means `RetryConfig(max_retries=n)` (openai's `max_retries`)."""
    if isinstance(value, RetryConfig):
        return value
    retries = whole_number(name, value, "a RetryConfig or a whole number of retries >= 0")
    return RetryConfig(max_retries=retries)


class Timeouts(msgspec.Struct, frozen=True, kw_only=True):
    """Deadlines in seconds: each a positive number, or None to disable it (0 is refused).

    connect: TCP/TLS connect. read: any single socket read, and the wait for the response
        headers (counted from the attempt's start).
    first_token: from sending a stream request to its first content chunk.
    idle: between two stream events, and from the headers to the first event (keep-alive
        comments do not count; time your own code spends between chunks does not count).
    response: from the call's start until its value is ready, retries and waits included: a plain
        call's whole body, a stream's first event. On by default (600 s, openai-python's default
        timeout), so no call hangs forever, yet it never cuts a stream that has started (its
        iteration is bounded by `read` per read, and by `idle` if you set it). Used only while
        `total` is None: a `total` you set bounds the whole call on its own.
    total: the whole call, retries and a stream's iteration included; `timeout_ms` sets it.

    All of them but `connect` are enforced by the SDK, not by aiohttp: one loop timer per event
    loop checks every deadline in force, and each fires within about 10 ms after it passes.

    Where Timeouts are expected (`AtomaCore(timeouts=)`, `RequestOptions(timeouts=)`), a plain
    number n of seconds means `Timeouts(connect=n, read=n)`, as openai-python's `timeout=n`: each
    connect and each read is limited to n, not the whole call (use `total` or `timeout_ms` for that).
    """

    connect: float | None = 10.0
    read: float | None = 120.0
    first_token: float | None = None
    idle: float | None = None
    response: float | None = 600.0
    total: float | None = None

    def __post_init__(self) -> None:  # kept cheap: `replace(timeouts, total=...)` runs it per call
        for value in (self.connect, self.read, self.first_token, self.idle, self.response, self.total):
            if value is not None and not (type(value) in (float, int) and 0 < value < _INF):
                self._check_each()  # the slow path: subclasses of float pass, the rest raises

    def _check_each(self) -> None:
        for field in self.__struct_fields__:
            value = getattr(self, field)
            if value is not None:
                number(f"Timeouts.{field}", value, "a positive number of seconds, or None", positive=True)


def as_timeouts(value: object, name: str) -> Timeouts:
    """`value` as Timeouts: a number n of seconds means `Timeouts(connect=n, read=n)` (openai's `timeout`)."""
    if isinstance(value, Timeouts):
        return value
    seconds = number(name, value, "a Timeouts or a positive number of seconds", positive=True)
    # A call allowed to wait n seconds per read must not be cut by the 600 s `response` default.
    return Timeouts(connect=seconds, read=seconds, response=max(seconds, 600.0))


class Fallback(msgspec.Struct, frozen=True, kw_only=True):
    """A fallback target: another model, another server (a base URL, like `server_url`), or both.
    What is left None is the call's own. In a `fallbacks` list a plain str means `Fallback(model=...)`."""

    model: str | None = None
    server_url: str | None = None

    def __post_init__(self) -> None:
        if self.model is None and self.server_url is None:
            raise InvalidRequestError("Fallback needs a model, a server_url, or both")
        if self.model is not None and (not isinstance(self.model, str) or not self.model):
            raise _not("Fallback.model", "a non-empty str", self.model)
        if self.server_url is not None:
            force_setattr(self, "server_url", check_server_url(self.server_url, "Fallback.server_url"))


def as_fallbacks(value: object, name: str) -> tuple[Fallback, ...]:
    """A list of model names and `Fallback`s as a tuple of `Fallback`s."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise _not(name, "a list of model names and Fallback(...) entries", value)
    out = []
    for entry in value:
        if isinstance(entry, Fallback):
            out.append(entry)
        elif isinstance(entry, str) and entry:
            out.append(Fallback(model=entry))
        else:
            raise _not(f"an entry of {name}", "a model name or a Fallback", entry)
    return tuple(out)


class Hedge(msgspec.Struct, frozen=True, kw_only=True):
    """Send the same request again when its first byte (a stream: its first event) is late, and
    take whichever answers first; the other is cancelled and its connection closed.

    delay: seconds to wait before the copy; None learns it: the `quantile` of the recent times to
    first byte of this server and model (kept by the core), `initial_delay` until `min_samples`
    are known. budget: the extra requests allowed, as a share of the calls made with this hedge
    (0.05: at most 5% more). non_idempotent: also hedge operations that change server state (a
    node lock, an image): off unless you opt in. A confidential copy is always encrypted afresh.
    to: where the copy goes: "same" target, or "fallback": the call's next fallback target (if
    it has one and its breaker is closed), so a slow region races the next one.
    """

    delay: float | None = None
    quantile: float = 0.95
    min_samples: int = 20
    initial_delay: float = 1.0
    budget: float = 0.05
    non_idempotent: bool = False
    to: Literal["same", "fallback"] = "same"

    def __post_init__(self) -> None:
        if self.to not in ("same", "fallback"):
            raise InvalidRequestError(f"Hedge.to must be 'same' or 'fallback', not {self.to!r}")
        if self.delay is not None:
            number("Hedge.delay", self.delay, "a number of seconds >= 0, or None to learn it")
        if not (isinstance(self.quantile, (int, float)) and 0 < self.quantile < 1):
            raise _not("Hedge.quantile", "a number between 0 and 1", self.quantile)
        whole_number("Hedge.min_samples", self.min_samples, "a whole number >= 1", minimum=1)
        number("Hedge.initial_delay", self.initial_delay, "a number of seconds >= 0")
        number("Hedge.budget", self.budget, "a share >= 0 (0.05: 5% more requests)")
        if not isinstance(self.non_idempotent, bool):
            raise _not("Hedge.non_idempotent", "True or False", self.non_idempotent)


class Breaker(msgspec.Struct, frozen=True, kw_only=True):
    """A circuit breaker per (server, model), kept by the core.

    It opens after `failures` consecutive retryable failures (429, 5xx, connection errors,
    timeouts), or when `failure_rate` (if set) of the last `window` attempts failed (at least
    `window` seen). Open, it sends nothing for `cooldown` seconds: calls go to their fallback, or
    fail at once with `CircuitOpenError` (`on_open="fail"`), or wait until it half-opens
    (`on_open="wait"`). Half-open, one trial call decides: success closes it, failure re-opens it.
    """

    failures: int = 5
    failure_rate: float | None = None
    window: int = 20
    cooldown: float = 30.0
    on_open: Literal["fail", "wait"] = "fail"

    def __post_init__(self) -> None:
        whole_number("Breaker.failures", self.failures, "a whole number >= 1", minimum=1)
        if self.failure_rate is not None and not (
            isinstance(self.failure_rate, (int, float)) and 0 < self.failure_rate <= 1
        ):
            raise _not("Breaker.failure_rate", "a share in (0, 1], or None", self.failure_rate)
        whole_number("Breaker.window", self.window, "a whole number >= 1", minimum=1)
        number("Breaker.cooldown", self.cooldown, "a positive number of seconds", positive=True)
        if self.on_open not in ("fail", "wait"):
            raise InvalidRequestError(f"Breaker.on_open must be 'fail' or 'wait', not {self.on_open!r}")


class CircuitChange(msgspec.Struct, kw_only=True):
    """What `Hooks.on_circuit_change` sees: a breaker of (server_url, model) went from `old` to
    `new` ("closed", "open", "half_open"); `until` is when an open one half-opens (`time.time()`)."""

    server_url: str
    model: str | None
    old: str
    new: str
    until: float | None = None
    failures: int = 0


class RequestOptions(msgspec.Struct, frozen=True, kw_only=True):
    """Per-call overrides. `timeout_ms` sets the total deadline; `timeouts` replaces them all.

    `retries=3` means `RetryConfig(max_retries=3)` and `timeouts=30.0` means
    `Timeouts(connect=30.0, read=30.0)`. `extra_body` is merged into the JSON body, for fields a
    server supports beyond the schema. A function given a dict instead takes it as these fields.

    Resilience (docs/guides/resilience.md; each also settable on `AtomaCore` for every call):
    `fallbacks` are tried in order when a call fails in a way another target can help (model
    names or `Fallback`s); `hedge` sends a copy when the first byte is late; `on_circuit_open`
    overrides the core's `Breaker.on_open`; `limiter` paces every attempt (an
    `atoma_core.limiter` limiter, shared across processes with the Redis one).
    """

    retries: RetryConfig | None = None
    timeout_ms: float | None = None
    headers: Mapping[str, str] | None = None
    server_url: str | None = None
    timeouts: Timeouts | None = None
    extra_body: Mapping[str, Any] | None = None
    fallbacks: Sequence[Union[str, Fallback]] | None = None  # kept as a tuple of `Fallback`s
    hedge: Hedge | None = None
    on_circuit_open: Literal["fail", "wait"] | None = None
    limiter: Any = None

    def __post_init__(self) -> None:
        if self.fallbacks is not None or self.hedge is not None or self.limiter is not None:
            self._check_resilience()
        if self.on_circuit_open not in (None, "fail", "wait"):
            raise _not("RequestOptions.on_circuit_open", "'fail', 'wait' or None", self.on_circuit_open)
        if self.retries is not None and type(self.retries) is not RetryConfig:
            force_setattr(self, "retries", as_retry_config(self.retries, "RequestOptions.retries"))
        if self.timeouts is not None and type(self.timeouts) is not Timeouts:
            force_setattr(self, "timeouts", as_timeouts(self.timeouts, "RequestOptions.timeouts"))
        if self.timeout_ms is not None:
            what = "a positive number of milliseconds, or None"
            number("RequestOptions.timeout_ms", self.timeout_ms, what, positive=True)
        if self.headers is not None:
            check_headers(self.headers, "RequestOptions.headers")
        if self.server_url is not None:
            check_server_url(self.server_url, "RequestOptions.server_url")
        if self.extra_body is not None and not isinstance(self.extra_body, Mapping):
            raise _not("RequestOptions.extra_body", "a mapping of JSON fields", self.extra_body)

    def _check_resilience(self) -> None:
        if self.fallbacks is not None:
            force_setattr(self, "fallbacks", as_fallbacks(self.fallbacks, "RequestOptions.fallbacks"))
        if self.hedge is not None and not isinstance(self.hedge, Hedge):
            raise _not("RequestOptions.hedge", "a Hedge or None", self.hedge)
        if self.limiter is not None:
            check_limiter(self.limiter, "RequestOptions.limiter")

    @property
    def resilient(self) -> bool:
        """Whether this call asks for any of fallbacks, hedging, a breaker override or a limiter."""
        return (
            self.fallbacks is not None
            or self.hedge is not None
            or self.limiter is not None
            or self.on_circuit_open is not None
        )


def check_limiter(limiter: object, name: str) -> Any:
    """`limiter` if it has the limiter methods (`atoma_core.limiter.Limiter`)."""
    if not all(callable(getattr(limiter, m, None)) for m in ("acquire", "rate_limited")):
        raise _not(name, "a limiter (LocalLimiter, RedisLimiter, or one with acquire/rate_limited)", limiter)
    return limiter


_OPTION_NAMES = RequestOptions.__struct_fields__


def coerce_options(options: object) -> RequestOptions | None:
    """A function's `options` as RequestOptions: None, RequestOptions, or a dict of its fields."""
    if options is None or isinstance(options, RequestOptions):
        return options
    if not isinstance(options, Mapping):
        what = "a RequestOptions, a dict of its fields, or None"
        raise InvalidRequestError(f"options must be {what}, not {type(options).__name__}")
    unknown = [key for key in options if key not in _OPTION_NAMES]
    if unknown:
        names = ", ".join(repr(key) for key in unknown)
        raise InvalidRequestError(f"unknown option {names}: RequestOptions has {', '.join(_OPTION_NAMES)}")
    return RequestOptions(**options)


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

    on_circuit_change: a plain function, called with a `CircuitChange` when a breaker of the
    core (`AtomaCore(breaker=...)`) changes state; one that raises is logged.
    """

    before_request: Hook | None = None
    after_success: Hook | None = None
    after_error: Hook | None = None
    on_call_start: CallHook | None = None
    on_call_end: CallHook | None = None
    on_circuit_change: Callable[[CircuitChange], None] | None = None

    def __post_init__(self) -> None:
        for field in self.__struct_fields__:
            hook = getattr(self, field)
            if hook is not None and not callable(hook):
                raise _not(f"Hooks.{field}", "a function (sync or async) or None", hook)
        for field in ("on_call_start", "on_call_end", "on_circuit_change"):  # their result is never awaited
            if _is_coroutine_function(getattr(self, field)):
                raise InvalidRequestError(f"Hooks.{field} must be a plain function, not async")


def _is_coroutine_function(hook: object) -> bool:
    import inspect  # loaded already by the core; imported here so config stays light

    return inspect.iscoroutinefunction(hook)
