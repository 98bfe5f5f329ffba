"""`batch_run`: many requests, from an iterable or async iterable of OpenAI batch-input lines,
rate-limited and bounded, one `BatchResult` yielded per item as each finishes.

Retries: each call is made with the SDK's retries off, and the job retries by the same policy
(`options.retries`, else the core's) itself, so every HTTP attempt passes the throttle and the
rate limits hold for retries too. A 429 is the job's business rather than one call's: it pauses
every worker for the `Retry-After` and slows the whole job down (`_throttle.py`); the item's
retry of it counts against the same policy (`max_retries`, `max_elapsed_time`) as any other.

Shared limits: with a `limiter` (`atoma_core.limiter`: a `RedisLimiter` shares one window and
its 429 pauses with every process using the same Redis key), each HTTP attempt also waits for it,
with its token estimate, and a 429 pauses everyone sharing it; the job's own throttle then keeps
only the bound on requests in flight (and its slow-down).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, AsyncIterable, AsyncIterator, Iterable, Mapping, Union

import msgspec

from atoma_core._retries import RetrySchedule, server_retry_after, status_is_retryable
from atoma_core.config import RequestOptions, RetryConfig, check_limiter
from atoma_core.errors import (
    APIConnectionError,
    APIError,
    AtomaError,
    InvalidRequestError,
    RequestTimeoutError,
)
from atoma_core.limiter import UNLIMITED
from atoma_core.result import Err, Result

from ._batch_ops import OPERATIONS, BatchOperation, used_tokens
from ._throttle import Throttle

if TYPE_CHECKING:
    from atoma_core.core import AtomaCore

__all__ = ["BatchRequest", "BatchResult", "batch_run", "check_item"]

DEFAULT_PAUSE = 1.0  # seconds every worker waits after a 429 without Retry-After


class BatchRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One batch-input line: `{"custom_id", "method": "POST", "url", "body"}`."""

    custom_id: str
    url: str
    body: dict[str, Any]
    method: str = "POST"


class BatchResult(msgspec.Struct, frozen=True):
    """One item's outcome: `result` is the operation's `Ok(response)` or `Err(error)`;
    `attempts` counts the HTTP attempts the job made for it (0: refused before sending)."""

    custom_id: str
    result: Result[Any, AtomaError]
    attempts: int = 1


Item = Union[BatchRequest, Mapping[str, Any]]


SHOWN_CHARS = 200  # of a bad value echoed in an error: enough to recognise it, never megabytes


def shown(value: Any) -> str:
    """`repr(value)` for an error message, cut to about `SHOWN_CHARS` characters, saying how long
    the value was when it is cut (a batch line may hold a 25 MB url)."""
    if isinstance(value, str) and len(value) > SHOWN_CHARS:
        return f"{value[:SHOWN_CHARS]!r}... ({len(value)} characters)"
    text = repr(value)
    if len(text) > SHOWN_CHARS:
        return f"{text[:SHOWN_CHARS]}... ({len(text)} characters in all)"
    return text


def check_item(item: Any, operations: Mapping[str, BatchOperation] = OPERATIONS) -> BatchRequest:
    """A batch-input line (a dict or a `BatchRequest`) checked; `InvalidRequestError` says why not."""
    if type(item) is dict:  # the common case, before the slower ABC check
        fields: Mapping[str, Any] = item
    elif isinstance(item, BatchRequest):
        fields = msgspec.structs.asdict(item)
    elif isinstance(item, Mapping):
        fields = item
    else:
        raise InvalidRequestError(f"not a JSON object but {type(item).__name__}")
    custom_id = fields.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        raise InvalidRequestError("no custom_id (a non-empty string)")
    method = fields.get("method", "POST")
    if method != "POST":
        raise InvalidRequestError(f"method must be POST, not {shown(method)}")
    url = fields.get("url")
    if not isinstance(url, str) or url not in operations:
        known = ", ".join(sorted(operations))
        raise InvalidRequestError(f"unknown url {shown(url)} (batch runs {known})")
    body = fields.get("body")
    if not isinstance(body, dict):
        raise InvalidRequestError("body must be a JSON object")
    return item if isinstance(item, BatchRequest) else BatchRequest(custom_id=custom_id, url=url, body=body)


def _custom_id_of(item: Any) -> str:
    custom_id = item.get("custom_id") if isinstance(item, Mapping) else getattr(item, "custom_id", None)
    return custom_id if isinstance(custom_id, str) else ""


def _retryable(error: AtomaError, policy: RetryConfig) -> bool:
    """Whether a failed attempt may be tried again under `policy`. Unlike a single call, the job
    also retries a connection lost while reading the answer: a batch line wants an answer."""
    if isinstance(error, APIError):
        return status_is_retryable(policy, error.status_code, error.headers)
    if isinstance(error, RequestTimeoutError):
        return error.phase in ("connect", "read") and policy.retry_connection_errors
    return isinstance(error, APIConnectionError) and policy.retry_connection_errors


_END: Any = object()  # the end of the items on the `todo` queue (None is an item: a bad one)


class _Runner:
    """What the workers of one job share: the core, the throttle, the retry policy, the table."""

    def __init__(
        self,
        core: AtomaCore,
        throttle: Throttle,
        options: RequestOptions | None,
        operations: Mapping[str, BatchOperation],
        limiter: Any = None,
    ) -> None:
        self.core = core
        self.throttle = throttle
        self.limiter = limiter
        self.policy = (options.retries if options is not None else None) or core.retry_config
        call_options = msgspec.structs.replace(options or RequestOptions(), retries=RetryConfig.none())
        if limiter is not None and (call_options.limiter is not None or core.limiter is not None):
            # the job acquires for each attempt itself (with its token estimate): not twice
            call_options = msgspec.structs.replace(call_options, limiter=UNLIMITED)
        self.call_options = call_options
        self.operations = operations

    async def work(self, todo: asyncio.Queue[Any], done: asyncio.Queue[BatchResult | None]) -> None:
        """Take items until the end marker (`_END`); put one result each, then an end marker."""
        while True:
            item = await todo.get()
            if item is _END:
                break
            await done.put(await self.run(item))
        await done.put(None)

    async def run(self, item: Any) -> BatchResult:
        """One item to its final result: never raises, except `asyncio.CancelledError`."""
        try:
            request = check_item(item, self.operations)
        except InvalidRequestError as invalid:
            return BatchResult(_custom_id_of(item), Err(invalid), 0)
        try:
            return await self._attempts(request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug: this item fails, typed, the job goes on
            from atoma_core._errormap import unexpected_error

            return BatchResult(request.custom_id, Err(unexpected_error(exc)), 0)

    async def _attempts(self, request: BatchRequest) -> BatchResult:
        operation = self.operations[request.url]
        estimate = operation.estimate(request.body)
        throttle = self.throttle
        loop = asyncio.get_running_loop()
        schedule: RetrySchedule | None = None
        attempts = 0
        while True:
            sent_at = await throttle.acquire(estimate)
            attempts += 1
            try:
                if self.limiter is not None:
                    await self.limiter.acquire(estimate)
                result = await operation.call(self.core, request.body, self.call_options)
            except AtomaError as unavailable:  # the shared limiter, configured to fail
                result = Err(unavailable)
            finally:
                throttle.release()
            if result.ok:
                used = used_tokens(result.value)
                throttle.settle(estimate, estimate if used is None else used)
                return BatchResult(request.custom_id, result, attempts)
            throttle.settle(estimate, 0)
            error = result.error
            error.attempts = attempts
            wait: float | None = None
            # The retry budget runs from the first failure: time spent queueing for the
            # throttle before it is the job's pace, not this item's trouble.
            if isinstance(error, APIError) and error.status_code == 429:
                schedule = schedule or RetrySchedule(self.policy, loop.time())
                wait = self._rate_limited(error, sent_at, schedule, loop.time())
                if self.limiter is not None:  # everyone sharing the limiter waits too
                    pause = server_retry_after(error.headers)
                    await self.limiter.rate_limited(DEFAULT_PAUSE if pause is None else pause)
            elif self.policy.enabled and _retryable(error, self.policy):
                schedule = schedule or RetrySchedule(self.policy, loop.time())
                server_wait = server_retry_after(error.headers) if isinstance(error, APIError) else None
                wait = schedule.next_wait(loop.time(), server_wait, None)
            if wait is None:
                return BatchResult(request.custom_id, result, attempts)
            await asyncio.sleep(wait)

    def _rate_limited(
        self, error: APIError, sent_at: float, schedule: RetrySchedule, now: float
    ) -> float | None:
        """Slow the whole job down; 0 to try again (the throttle holds the attempt back), None
        to give up: retries off, x-should-retry: false, too long a pause, or the item's retry
        budget (`max_retries`, `max_elapsed_time`) spent."""
        asked = server_retry_after(error.headers)
        pause = DEFAULT_PAUSE if asked is None else asked
        self.throttle.rate_limited(sent_at, pause)
        policy = self.policy
        if not (policy.enabled and status_is_retryable(policy, 429, error.headers)):
            return None
        if asked is None:  # our own pause: never refused as "longer than we accept"
            pause = min(pause, policy.max_retry_after_ms / 1000.0)
        return None if schedule.next_wait(now, pause, None) is None else 0.0


async def _feed(items: Iterable[Any] | AsyncIterable[Any], todo: asyncio.Queue[Any]) -> None:
    """Put the items on the bounded queue as room frees up."""
    if isinstance(items, AsyncIterable):
        async for item in items:
            await todo.put(item)
    else:
        for item in items:
            await todo.put(item)


async def _feed_then_end(
    items: Iterable[Any] | AsyncIterable[Any], todo: asyncio.Queue[Any], workers: int
) -> BaseException | None:
    """`_feed`, then the end markers; an exception from the items is returned, to raise once the
    items taken before it are done."""
    failure: BaseException | None = None
    try:
        await _feed(items, todo)
    except Exception as exc:
        failure = exc
    for _ in range(workers):
        await todo.put(_END)
    return failure


def _check_limits(concurrency: int, *rates: float | None) -> None:
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise InvalidRequestError(f"concurrency must be a positive integer, not {concurrency!r}")
    for rate in rates:
        if rate is not None and not (isinstance(rate, (int, float)) and 0 < rate < float("inf")):
            raise InvalidRequestError(f"a rate limit must be a positive number or None, not {rate!r}")


async def batch_run(
    core: AtomaCore,
    items: Iterable[Item] | AsyncIterable[Item],
    *,
    concurrency: int = 32,
    requests_per_minute: float | None = None,
    tokens_per_minute: float | None = None,
    options: RequestOptions | None = None,
    operations: Mapping[str, BatchOperation] = OPERATIONS,
    limiter: Any = None,
) -> AsyncIterator[BatchResult]:
    """Run batch-input lines (`{"custom_id", "url", "body"}` dicts or `BatchRequest`s), at most
    `concurrency` in flight and within the rate limits; yield a `BatchResult` per item as each
    finishes. Items are taken lazily, a few ahead; a bad item is an `Err(InvalidRequestError)`
    result. `options` apply to every call (its `retries` are the job's policy, see the module
    doc). `operations` maps each `url` to what runs it. To leave the loop early, wrap the call
    in `contextlib.aclosing`, so the requests still in flight are cancelled at once.
    `limiter` (a `LocalLimiter`, a `RedisLimiter` shared across processes, ...) paces every
    attempt too; the rates above then apply on top of it in this process."""
    _check_limits(concurrency, requests_per_minute, tokens_per_minute)
    if limiter is not None:
        check_limiter(limiter, "limiter")
    throttle = Throttle(concurrency, requests_per_minute, tokens_per_minute)
    runner = _Runner(core, throttle, options, operations, limiter)
    todo: asyncio.Queue[Any] = asyncio.Queue(maxsize=concurrency)
    done: asyncio.Queue[BatchResult | None] = asyncio.Queue(maxsize=concurrency)
    feeder = asyncio.ensure_future(_feed_then_end(items, todo, concurrency))
    workers = [asyncio.ensure_future(runner.work(todo, done)) for _ in range(concurrency)]
    try:
        running = concurrency
        while running:
            result = await done.get()
            if result is None:
                running -= 1
            else:
                yield result
        failure = await feeder
        if failure is not None:
            raise failure
    finally:
        for task in (feeder, *workers):
            task.cancel()
        await asyncio.gather(feeder, *workers, return_exceptions=True)
