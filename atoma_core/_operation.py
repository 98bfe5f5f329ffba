"""What every layer of the request path speaks: an `Operation` and the `CallContext` of one call.

Bottom floor: imports nothing of the SDK above the error tree and the configuration, so the
request path (`_request`), the body reader (`_body`) and the event stream (`_events`) can all
use these types without importing one another.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Generic, TypeVar

import msgspec

if TYPE_CHECKING:
    import aiohttp

    from .config import CallInfo, Hooks, RequestOptions, RetryConfig, Timeouts
    from .core import AtomaCore
    from .errors import AtomaError

__all__ = ["BodyBuilder", "CallContext", "Handle", "Operation", "RetryableError"]

log = logging.getLogger("atoma")

Req = TypeVar("Req", bound=msgspec.Struct)
T = TypeVar("T")
U = TypeVar("U")


class CallContext:
    """One call's state, shared by its attempts and handed to every per-attempt step.

    `state` belongs to the operation: its body builder may leave something there for its
    `handle` step (confidential compute leaves the key that decrypts the answer). `last_error`
    is the previous attempt's failure, so a body builder can react to it (re-lock on 423).
    `options` are the call's own, for a step that makes a call of its own (the node lock).
    `hooks` are the core's hooks when the call started; `call` is what the call-level hooks see,
    None when there are none (then nothing below does any work for them).
    """

    __slots__ = (
        "attempts",
        "call",
        "core",
        "deadline",
        "end_taken",
        "hedged",
        "hooks",
        "last_error",
        "operation_id",
        "options",
        "ready_by",
        "request_id",
        "retry",
        "route",
        "started",
        "state",
        "target",
        "timeouts",
        "walk",
    )
    walk: Any  # `_route.Walk`: set only on a routed call that needs it, never read on others

    def __init__(
        self,
        core: AtomaCore,
        operation_id: str,
        retry: RetryConfig,
        timeouts: Timeouts,
        started: float,
        deadline: float | None,
        options: RequestOptions | None = None,
        ready_by: float | None = None,
    ) -> None:
        self.core = core
        self.options = options
        self.operation_id = operation_id
        self.retry = retry
        self.timeouts = timeouts
        self.started = started
        self.deadline = deadline  # loop time the whole call must end by (`total`)
        self.ready_by = ready_by  # loop time its value must be ready by (`response`)
        self.attempts = 0
        self.request_id: str | None = None
        self.state: Any = None
        self.last_error: AtomaError | None = None
        self.hooks: tuple[Hooks, ...] = core.hooks
        self.call: CallInfo | None = None
        self.end_taken = False
        self.route: Any = None  # `_route.Route` when fallbacks, hedging, breakers or a limiter apply
        self.target: Any = None  # the route's target being tried
        self.hedged = False  # a hedged copy answered

    def take_end(self) -> CallContext | None:
        """For a value that outlives the call (a stream): its own end will `end()` the call, so the
        request path leaves on_call_end to it. None when no call-level hooks are watching."""
        if self.call is None:
            return None
        self.end_taken = True
        return self

    def end(self, ended: float, value: Any = None, error: BaseException | None = None) -> None:
        """Run the on_call_end hooks, once, with the outcome and the loop time it came at; a hook's
        failure is logged, not raised."""
        info = self.call
        if info is None:
            return
        self.call = None
        info.attempts = self.attempts
        info.elapsed = ended - self.started
        info.value = value
        info.error = error
        for hooks in self.hooks:
            if hooks.on_call_end is not None:
                try:
                    hooks.on_call_end(info)
                except Exception:
                    log.exception("%s on_call_end hook failed", self.operation_id)


Handle = Callable[["aiohttp.ClientResponse", CallContext], Awaitable[T]]
"""Turns a 2xx response into the value: read and decode a body, or open an event stream."""

BodyBuilder = Callable[[bytes, CallContext], Awaitable[bytes]]
"""Per attempt: the request's JSON in, the bytes to send out (may set `ctx.state`)."""


class Operation(Generic[Req, T]):
    """One API operation: method and path, what its request is, how to read a 2xx answer.

    request_type: the body's Struct (a dict is validated into it), or None for a body-less route.
    prepare: a pure fix applied to the validated request once per call (`stream: true`, ...).
    build_body: an async step run before every attempt on the encoded JSON (encryption).
    auth: False for routes that take no bearer token (`/health`, `/v1/open_router/models`).
    retry_statuses: statuses this operation retries on top of the configured ones.
    idempotent: sending it twice changes nothing more than sending it once (inference, reads):
        only such operations are hedged, unless `Hedge(non_idempotent=True)`. Default: GET only.
    An operation that accepts `text/event-stream` `streams`: its value outlives `handle`.
    """

    __slots__ = (
        "accept",
        "auth",
        "build_body",
        "handle",
        "idempotent",
        "method",
        "operation_id",
        "path",
        "prepare",
        "request_type",
        "retry_statuses",
        "streams",
    )

    def __init__(
        self,
        operation_id: str,
        method: str,
        path: str,
        handle: Handle[T],
        *,
        request_type: type[Req] | None = None,
        prepare: Callable[[Req], Req] | None = None,
        build_body: BodyBuilder | None = None,
        accept: str = "application/json",
        auth: bool = True,
        retry_statuses: frozenset[int] = frozenset(),
        idempotent: bool | None = None,
    ) -> None:
        self.operation_id = operation_id
        self.method = method
        self.path = path
        self.handle = handle
        self.request_type = request_type
        self.prepare = prepare
        self.build_body = build_body
        self.accept = accept
        self.auth = auth
        self.retry_statuses = retry_statuses
        self.idempotent = method in ("GET", "HEAD") if idempotent is None else idempotent
        # Its value is an open event stream, read on after `handle` returns.
        self.streams = accept == "text/event-stream"

    def answered_by(self, handle: Handle[U]) -> Operation[Req, U]:
        """The same operation (path, request, body builder, retries) with its answer read by
        `handle`: how a layer above decodes the one answer into its own type, not a copy."""
        return Operation(
            self.operation_id,
            self.method,
            self.path,
            handle,
            request_type=self.request_type,
            prepare=self.prepare,
            build_body=self.build_body,
            accept=self.accept,
            auth=self.auth,
            retry_statuses=self.retry_statuses,
            idempotent=self.idempotent,
        )


class RetryableError(Exception):
    """Raised by a `handle` step (or a body builder) for a failure that reached no user code, so
    the request path may retry it by the same rules as an HTTP status or a connection error:
    a stream's first event is an error, or the connection dropped before it."""

    def __init__(self, error: AtomaError) -> None:
        super().__init__(error.message)
        self.error = error
