"""THE request path: encode, build URL and headers, then per attempt build the body, send,
retry, map failures and hand the response to the operation's `handle` step.

Every operation is an `Operation` (`_operation.py`) run by `call()`, which returns a Result and
never raises, except `asyncio.CancelledError`. Any method, with or without a body or a token.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Awaitable, Mapping, TypeVar

import aiohttp
import msgspec

from ._attempt_hooks import edited_headers, hook_context, run_hooks
from ._body import read_prefix
from ._errormap import api_error_from, describe, timeout_error, transport_error, unexpected_error
from ._operation import CallContext, Operation, RetryableError
from ._route import answered, direct_target, failed_at, fall_back, guarded_attempt, plan, served
from ._watchdog import AttemptTimer
from .config import (
    CallInfo,
    HookContext,
    RequestOptions,
    RetryConfig,
    Timeouts,
    check_headers,
    coerce_options,
    shown_url,
)
from .core import ENV_BEARER_AUTH
from .errors import (
    APIConnectionError,
    APIError,
    AtomaError,
    InvalidRequestError,
    RequestTimeoutError,
    UnexpectedClientError,
)
from .result import Err, Ok, Result

if TYPE_CHECKING:
    from .core import AtomaCore

__all__ = ["call"]

log = logging.getLogger("atoma")
Req = TypeVar("Req", bound=msgspec.Struct)
T = TypeVar("T")

_encoder = msgspec.json.Encoder()


class _AttemptFailed(Exception):
    """One attempt's failure, with what the retry loop needs to decide."""

    def __init__(self, error: AtomaError, retryable: bool, server_wait: float | None = None) -> None:
        self.error = error
        self.retryable = retryable
        self.server_wait = server_wait


def encode_request(
    op: Operation[Req, Any], request: Req | Mapping[str, Any] | None, extra_body: Mapping[str, Any] | None
) -> tuple[Req | None, bytes | None]:
    """Validate a dict (or take a Struct), apply the operation's fixes, encode to JSON bytes.
    Returns the validated request and its bytes; (None, None) for an operation without a body."""
    request_type = op.request_type
    if request_type is None:
        if request is not None or extra_body:
            raise InvalidRequestError(f"{op.operation_id} takes no request body")
        return None, None
    try:
        if isinstance(request, request_type):
            req = request
        elif type(request) is dict or isinstance(request, Mapping):  # the ABC check is slow
            try:  # plain data first: reading objects' attributes makes every dict slower
                req = msgspec.convert(request, request_type)
            except msgspec.ValidationError:  # e.g. a message given as another library's object
                req = msgspec.convert(request, request_type, from_attributes=True)
        else:
            raise InvalidRequestError(
                f"request must be a dict or {request_type.__name__}, not {type(request).__name__}"
            )
        if op.prepare is not None:
            req = op.prepare(req)
        if extra_body:
            merged = msgspec.to_builtins(req)
            merged.update(extra_body)
            return req, _encoder.encode(merged)
        return req, _encoder.encode(req)
    except InvalidRequestError:
        raise
    except msgspec.ValidationError as exc:
        raise InvalidRequestError(f"invalid request: {exc}") from None
    except (msgspec.EncodeError, TypeError, ValueError) as exc:
        raise InvalidRequestError(f"request cannot be encoded: {exc}") from None


async def call(
    core: AtomaCore,
    op: Operation[Req, T],
    request: Req | Mapping[str, Any] | None = None,
    options: RequestOptions | None = None,
) -> Result[T, AtomaError]:
    """Run one operation end to end with retries. Returns Ok(value) or Err(AtomaError)."""
    try:  # a dict of options becomes RequestOptions; anything else wrong is an Err
        options = coerce_options(options)
    except InvalidRequestError as invalid:
        return Err(invalid)
    retry: RetryConfig = core.retry_config
    timeouts: Timeouts = core.timeouts
    extra_headers: Mapping[str, str] | None = None
    server_url: str | None = None
    extra_body: Mapping[str, Any] | None = None
    if options is not None:
        retry = options.retries or retry
        timeouts = options.timeouts or timeouts
        if options.timeout_ms is not None:
            timeouts = msgspec.structs.replace(timeouts, total=options.timeout_ms / 1000.0)
        extra_headers = options.headers
        server_url = options.server_url
        extra_body = options.extra_body
    try:
        req, body = encode_request(op, request, extra_body)
        headers = await _headers(core, op, extra_headers, body is not None, server_url)
        url = core.url(op.path, server_url)
    except AtomaError as invalid:
        return Err(invalid)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return Err(unexpected_error(exc))

    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + timeouts.total if timeouts.total is not None else None
    ready_by = None  # `response` is the deadline of a call without `total`, up to its value
    if deadline is None and timeouts.response is not None:
        ready_by = started + timeouts.response
    ctx = CallContext(core, op.operation_id, retry, timeouts, started, deadline, options, ready_by)
    if core.routes or (options is not None and options.resilient):  # else: no cost at all
        plan(ctx, op, req, body, url, server_url, _with_model)
    if ctx.hooks and any(h.on_call_start or h.on_call_end for h in ctx.hooks):
        return await _observed(op, ctx, req, url, headers, body)
    return await _run(op, ctx, req, url, headers, body)


def _run(
    op: Operation[Req, T],
    ctx: CallContext,
    request: Req | None,
    url: Any,
    headers: dict[str, str],
    body: bytes | None,
) -> Awaitable[Result[T, AtomaError]]:
    """The retry loop on the call's own target (a plain call: its coroutine, no other), or
    `_routed`."""
    if ctx.route is None:
        return _attempts(op, ctx, url, headers, body)
    return _routed(op, ctx, request, url, headers, body)


async def _routed(
    op: Operation[Req, T],
    ctx: CallContext,
    request: Req | None,
    url: Any,
    headers: dict[str, str],
    body: bytes | None,
) -> Result[T, AtomaError]:
    """A routed call: the retry loop on its own target, then `served`, or, when that target
    failed in a way another can help, the fallbacks' targets in turn, each with the retry loop."""
    result = await _attempts(op, ctx, url, headers, body)
    if result.ok:
        return served(op, ctx, result)
    return await fall_back(op, ctx, request, body, headers, _attempts, result)


def _with_model(
    op: Operation[Req, Any], request: Any, model: str, extra_body: Mapping[str, Any] | None
) -> bytes:
    """How a fallback's body is made: the validated request with `model` replaced, encoded."""
    replaced = msgspec.structs.replace(request, model=model)
    return encode_request(op, replaced, extra_body)[1] or b""


async def _attempts(
    op: Operation[Req, T], ctx: CallContext, url: Any, headers: dict[str, str], body: bytes | None
) -> Result[T, AtomaError]:
    """The retry loop: attempts until a value, a final failure or the end of the retry budget."""
    core, retry, started = ctx.core, ctx.retry, ctx.started
    retry_by = ctx.deadline if ctx.deadline is not None else ctx.ready_by
    loop = asyncio.get_running_loop()
    schedule = None
    while True:
        ctx.attempts += 1
        direct = None  # a routed attempt that needs only its closed breaker's word: sent as is
        try:
            if ctx.route is None:
                return Ok(await _attempt(core, op, ctx, url, headers, body))
            direct = direct_target(ctx)
            if direct is None:
                return Ok(await guarded_attempt(core, op, ctx, url, headers, body, _attempt, _AttemptFailed))
            sent = time.monotonic()
            value = await _attempt(core, op, ctx, url, headers, body)
            answered(direct, sent)
            return Ok(value)
        except _AttemptFailed as failed:
            failure = failed.error
            if direct is not None:
                failed_at(direct, failure)
            failure.attempts = ctx.attempts
            ctx.last_error = failure
            if not (failed.retryable and retry.enabled):
                return _failed(op, ctx, failure)
            now = loop.time()
            if schedule is None:
                from ._retries import RetrySchedule

                schedule = RetrySchedule(retry, started)
            wait = schedule.next_wait(now, failed.server_wait, retry_by)
            if wait is None:
                return _failed(op, ctx, failure)
            log.debug(
                "%s retry %d in %.3f s after attempt %d: %s",
                op.operation_id,
                schedule.retries,
                wait,
                ctx.attempts,
                describe(failure),
            )
            await asyncio.sleep(wait)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug: report it, typed, with its cause
            bug = unexpected_error(exc)
            bug.attempts = ctx.attempts
            return Err(bug)


async def _observed(
    op: Operation[Req, T],
    ctx: CallContext,
    request: Req | None,
    url: Any,
    headers: dict[str, str],
    body: bytes | None,
) -> Result[T, AtomaError]:
    """The retry loop between the call-level hooks: on_call_start before the first attempt,
    on_call_end once with the outcome, unless the value took the end over (a stream)."""
    info = ctx.call = CallInfo(operation_id=op.operation_id, method=op.method, url=str(url), request=request)
    result: Result[T, AtomaError]
    try:
        for hooks in ctx.hooks:
            if hooks.on_call_start is not None:
                hooks.on_call_start(info)
    except Exception as exc:
        error = UnexpectedClientError(f"{op.operation_id} on_call_start hook failed: {exc!r}")
        error.__cause__ = exc
        result = Err(error)
    else:
        try:
            result = await _run(op, ctx, request, url, headers, body)
        except BaseException as exc:  # cancelled: the call ends here too
            ctx.end(asyncio.get_running_loop().time(), error=exc)
            raise
        if result.ok and ctx.end_taken:
            return result
    ended = asyncio.get_running_loop().time()
    if result.ok:
        ctx.end(ended, value=result.value)
    else:
        ctx.end(ended, error=result.error)
    return result


def _failed(op: Operation[Any, Any], ctx: CallContext, error: AtomaError) -> Err[AtomaError]:
    log.debug("%s failed after %d attempt(s): %s", op.operation_id, ctx.attempts, describe(error))
    return Err(error)


async def _headers(
    core: AtomaCore,
    op: Operation[Any, Any],
    extra: Mapping[str, str] | None,
    has_body: bool,
    server_url: str | None = None,
) -> dict[str, str]:
    headers = dict(core.headers)
    headers["Accept"] = op.accept
    if has_body:
        headers["Content-Type"] = "application/json"
    if op.auth:
        try:
            auth = await core.authorization()
        except ValueError as exc:
            raise InvalidRequestError(f"invalid bearer token: {exc}") from None
        if auth is not None:
            headers["Authorization"] = auth
    if extra:  # checked again here: the mapping given to RequestOptions may have changed since
        headers.update(check_headers(extra, "RequestOptions.headers"))
    if op.auth and "Authorization" not in headers and _no_token(core, headers, server_url):
        raise InvalidRequestError(
            f"no bearer token: set {ENV_BEARER_AUTH} or pass bearer_auth= (the Atoma API needs one; "
            "nothing was sent)"
        )
    return headers


def _no_token(core: AtomaCore, headers: Mapping[str, str], server_url: str | None) -> bool:
    """Whether a request to Atoma's API is about to go out without any Authorization header."""
    has_auth = any(name.lower() == "authorization" for name in headers)
    return not has_auth and core.token_required(server_url)


async def _attempt(
    core: AtomaCore,
    op: Operation[Req, T],
    ctx: CallContext,
    url: Any,
    headers: dict[str, str],
    body: bytes | None,
) -> T:
    """One attempt: build this attempt's body, run the hooks around sending it. All of it runs
    under the call's deadline (one `AttemptTimer`): a body builder (a node lock, a re-lock) or a
    hook that hangs is cut there, with the timeout error the call gives."""
    loop = asyncio.get_running_loop()
    call_due = ctx.deadline if ctx.deadline is not None else ctx.ready_by
    if call_due is not None and call_due <= loop.time():
        raise _AttemptFailed(_deadline_error(ctx), retryable=False)
    timer = AttemptTimer(loop, None, call_due)
    hooks = ctx.hooks
    hook_ctx = None
    try:
        try:
            if op.build_body is not None and body is not None:
                body = await op.build_body(body, ctx)
            if hooks:
                hook_ctx = hook_context(ctx, op, url, headers, body)
                await run_hooks(hooks, "before_request", hook_ctx)
                headers = edited_headers(headers, hook_ctx.request_headers)
        except asyncio.CancelledError:
            _raise_if_expired(timer, ctx)
            raise
        return await _exchange(core, op, ctx, url, headers, body, hook_ctx, timer)
    except _AttemptFailed as failed:
        if hook_ctx is not None:
            hook_ctx.error = failed.error
            if timer.fired is not None:
                timer.rearm()  # the after_error hooks get what is left of the call's time
            try:
                await run_hooks(hooks, "after_error", hook_ctx)
            except asyncio.CancelledError:
                _raise_if_expired(timer, ctx)
                raise
        raise
    except RetryableError as early:  # the body builder failed before anything was sent
        raise _AttemptFailed(early.error, _retryable(ctx.retry, op, early.error)) from None
    except AtomaError as error:  # a hook or the body builder failed
        raise _AttemptFailed(error, retryable=False) from None
    finally:
        timer.cancel()


def _raise_if_expired(timer: AttemptTimer, ctx: CallContext) -> None:
    """After a `CancelledError`: if the timer caused it, the attempt failed with its timeout
    (the call's deadline, or `read` for headers that did not come); else it was a real cancel."""
    if not timer.expired():
        return
    if timer.fired == "call":
        raise _AttemptFailed(_deadline_error(ctx), retryable=False) from None
    read_error = timeout_error("read", ctx.timeouts.read)
    raise _AttemptFailed(read_error, ctx.retry.retry_connection_errors) from None


def _connect_timeout(seconds: float | None) -> aiohttp.ClientTimeout:
    """aiohttp's timeouts for a request: connecting only (built once per value). Every other
    deadline is an `AttemptTimer` or a `Watchdog`: nothing re-arms a timer per socket read."""
    timeout = _connect_timeouts.get(seconds)
    if timeout is None:
        if len(_connect_timeouts) >= 64:  # per-call values must not grow it for ever
            _connect_timeouts.clear()
        timeout = _connect_timeouts[seconds] = aiohttp.ClientTimeout(total=None, sock_connect=seconds)
    return timeout


_connect_timeouts: dict[float | None, aiohttp.ClientTimeout] = {}


def _deadline_error(ctx: CallContext) -> RequestTimeoutError:
    """The call's own deadline passed: `total` if set, else `response`."""
    if ctx.deadline is not None:
        return timeout_error("total", ctx.timeouts.total)
    return timeout_error("response", ctx.timeouts.response)


async def _exchange(
    core: AtomaCore,
    op: Operation[Req, T],
    ctx: CallContext,
    url: Any,
    headers: dict[str, str],
    body: bytes | None,
    hook_ctx: HookContext | None,
    timer: AttemptTimer,
) -> T:
    """Send, check the status, hand the response to the operation's `handle` step, all under
    the attempt's `AttemptTimer`: the headers within `read`, the value within the call's deadline
    (`total`, else `response`; a stream's value is ready with its first event)."""
    loop = asyncio.get_running_loop()
    timeouts = ctx.timeouts
    timer.expect_headers(None if timeouts.read is None else loop.time() + timeouts.read)
    debug = log.isEnabledFor(logging.DEBUG)
    if debug:
        shown = shown_url(url, op.path)  # a provider's key may sit in a base URL's path
        log.debug("%s attempt %d: %s %s", op.operation_id, ctx.attempts, op.method, shown)
    try:
        session = core.session_of(loop) or await core.session()
        try:
            # Redirects are not followed: a 302 would turn the POST into a body-less GET, and a
            # 307/308 would forward the prompt to another origin. They come back as an APIError.
            response = await session.request(
                op.method,
                url,
                data=body,
                headers=headers,
                timeout=_connect_timeout(timeouts.connect),
                allow_redirects=False,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = transport_error(exc, timeouts)
            retryable = isinstance(error, APIConnectionError) and (
                not isinstance(error, RequestTimeoutError) or error.phase not in ("total", "response")
            )
            raise _AttemptFailed(error, retryable and ctx.retry.retry_connection_errors) from None
        timer.headers_in = True
        status = response.status
        ctx.request_id = response.headers.get("x-request-id")
        if debug:
            log.debug(
                "%s attempt %d: HTTP %d in %.1f ms, request id %s",
                op.operation_id,
                ctx.attempts,
                status,
                (loop.time() - ctx.started) * 1000,
                ctx.request_id,
            )
        if hook_ctx is not None:
            hook_ctx.status = status
            hook_ctx.response_headers = response.headers
        if status >= 300:
            await _raise_for_status(op, response, ctx)
        try:
            if hook_ctx is not None:
                await run_hooks(ctx.hooks, "after_success", hook_ctx)
            return await op.handle(response, ctx)
        except asyncio.CancelledError:
            response.close()
            raise
        except RetryableError as early:
            response.close()
            raise _AttemptFailed(early.error, _retryable(ctx.retry, op, early.error)) from None
        except AtomaError as error:
            response.close()
            raise _AttemptFailed(error, retryable=False) from None
        except Exception as exc:
            response.close()
            raise _AttemptFailed(transport_error(exc, timeouts), retryable=False) from None
    except asyncio.CancelledError:
        _raise_if_expired(timer, ctx)
        raise


def _retryable(retry: RetryConfig, op: Operation[Any, Any], error: AtomaError) -> bool:
    """Whether a failure that reached no user code may be retried under this policy."""
    from ._retries import status_is_retryable

    if isinstance(error, APIError):
        return status_is_retryable(retry, error.status_code, error.headers, op.retry_statuses)
    return isinstance(error, APIConnectionError) and retry.retry_connection_errors


async def _raise_for_status(
    op: Operation[Any, Any], response: aiohttp.ClientResponse, ctx: CallContext
) -> None:
    from ._retries import server_retry_after, status_is_retryable

    try:
        raw = await read_prefix(response, read_timeout=ctx.timeouts.read)
    except asyncio.CancelledError:
        response.close()
        raise
    except Exception:  # the status says enough; a broken error body must not hide it
        raw = b""
        response.close()
    finally:
        response.release()
    status = response.status
    error = api_error_from(status, response.reason, response.headers, raw)
    retryable = status_is_retryable(ctx.retry, status, response.headers, op.retry_statuses)
    raise _AttemptFailed(error, retryable, server_retry_after(response.headers) if retryable else None)
