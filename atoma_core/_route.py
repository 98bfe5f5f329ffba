"""The request path's per-call choices (used only when something is configured, so a plain call
never comes here): which target to try (the call's own, then its fallbacks), whether the
target's breaker lets an attempt through, the shared rate limiter, and a hedged copy.

`run_targets` walks the targets, each with the path's own retry loop; `guarded_attempt` wraps
one attempt of that loop. Both get the path's functions as arguments, so this module never
imports `_request` (data still flows one way).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterator, Mapping, TypeVar

from ._fallback import Target, can_fall_back, fallback_targets, fallbacks_of, usable_fallbacks
from ._hedge import race
from .errors import APIError, AtomaError, CircuitOpenError
from .limiter import UNLIMITED

if TYPE_CHECKING:
    from ._operation import CallContext, Operation
    from ._resilience import Resilience
    from .config import Hedge, RequestOptions
    from .core import AtomaCore
    from .models.meta import FallbackFailure, ResponseMeta
    from .result import Result

__all__ = ["Route", "guarded_attempt", "plan", "run_targets"]

log = logging.getLogger("atoma")
T = TypeVar("T")
DEFAULT_PAUSE = 1.0  # seconds everyone sharing a limiter waits after a 429 without Retry-After
# Set while an attempt runs: a call made inside it (a confidential node lock) is part of that
# attempt, which its breaker has already let through (as the half-open trial, maybe): no own
# breaker, no hedge, no fallback (a lock from another server would not fit this target).
_inside_attempt: contextvars.ContextVar[bool] = contextvars.ContextVar("atoma_inside_attempt", default=False)

Attempt = Callable[
    ["AtomaCore", "Operation[Any, T]", "CallContext", Any, dict[str, str], "bytes | None"], Awaitable[T]
]
Attempts = Callable[
    ["Operation[Any, T]", "CallContext", Any, dict[str, str], "bytes | None"],
    Awaitable["Result[T, AtomaError]"],
]


class Route:
    """One call's choices: its targets in order, the hedge (None: never), the limiter, what an
    open breaker does at the last target, and the core's state they read and update."""

    __slots__ = ("ahead", "breakers", "first", "hedge", "limiter", "nests", "on_open", "rest", "state")

    def __init__(
        self,
        first: Target,
        rest: Iterator[Target] | None,
        hedge: Hedge | None,
        limiter: Any,
        on_open: str,
        state: Resilience,
        breakers: bool,
        nests: bool,
    ) -> None:
        self.first: Target | None = first  # the call's own target, until the walk takes it
        self.rest = rest  # the fallbacks' targets, made as the walk reaches them
        self.hedge = hedge
        self.limiter = limiter
        self.on_open = on_open
        self.state = state
        self.breakers = breakers  # whether targets have breakers (not inside another attempt)
        self.nests = nests  # its attempts may make calls of their own (a body builder's lock)
        self.ahead: Target | None = None  # made early for a hedged copy, not walked to yet

    def next_target(self) -> Target | None:
        """The next target of the walk (None: no more), with its breaker."""
        target, self.ahead = self.ahead, None
        if target is None:
            target, self.first = self.first, None
            if target is None and self.rest is not None:
                target = next(self.rest, None)
            if target is not None:
                book = target.latencies = self.state.of(target.server_url, target.model)
                if self.breakers:
                    target.breaker = book.breaker
        return target

    def peek_target(self) -> Target | None:
        """The target after the current one, without walking to it (a hedged copy may go there)."""
        if self.ahead is None:
            self.ahead = self.next_target()
        return self.ahead


class Served:
    """What answered, for the value's `meta`: model, server, the targets tried before, hedged."""

    __slots__ = ("fallbacks", "hedged", "model", "server_url")

    def __init__(self, target: Target, tried: list[FallbackFailure], hedged: bool) -> None:
        self.model = target.model
        self.server_url = target.server_url
        self.fallbacks = tuple(tried)
        self.hedged = hedged

    def apply(self, meta: ResponseMeta | None) -> None:
        if meta is not None:
            meta.model = self.model
            meta.server_url = self.server_url
            meta.fallbacks = self.fallbacks
            meta.hedged = self.hedged


def plan(
    core: AtomaCore,
    op: Operation[Any, Any],
    request: Any,
    body: bytes | None,
    url: Any,
    server_url: str | None,
    options: RequestOptions | None,
    with_model: Callable[[Any, str], bytes],
) -> Route:
    """The call's route from its options and the core's defaults."""
    state = core.resilience or core.resilience_state()
    nested = _inside_attempt.get()  # part of an attempt to one target: it stays on that target
    own_model = getattr(request, "model", None)
    fallbacks = () if nested else fallbacks_of(core, options)
    if fallbacks and own_model is None:
        fallbacks = usable_fallbacks(own_model, fallbacks)
    first = Target(own_model, server_url or core.server_url, url, body, not fallbacks)
    rest = fallback_targets(core, op, request, first, fallbacks, with_model) if fallbacks else None
    hedge = core.hedge if options is None or options.hedge is None else options.hedge
    if nested:
        hedge = None
    breakers = state.breaker is not None and not nested
    if hedge is not None and not (op.idempotent or hedge.non_idempotent):
        hedge = None  # it would change server state twice: only on the user's word
    if hedge is not None:
        state.hedge.calls += 1
    limiter = core.limiter if options is None or options.limiter is None else options.limiter
    if limiter is UNLIMITED:
        limiter = None
    on_open = options.on_circuit_open if options is not None and options.on_circuit_open else None
    if on_open is None:
        on_open = state.breaker.on_open if state.breaker is not None else "fail"
    return Route(first, rest, hedge, limiter, on_open, state, breakers, op.build_body is not None)


async def run_targets(
    op: Operation[Any, T], ctx: CallContext, headers: dict[str, str], attempts: Attempts[T]
) -> Result[T, AtomaError]:
    """Each target in turn, with the path's retry loop, until one answers or a failure that no
    other target can help (a bad request). All failing: the last target's error, the earlier
    ones on its `attempted`."""
    route: Route = ctx.route
    tried: list[FallbackFailure] = []
    last: Result[T, AtomaError] | None = None
    while True:
        try:
            target = route.next_target()
        except AtomaError as unusable:  # a fallback's request that cannot be encoded
            log.warning("%s: a fallback cannot be tried: %s", op.operation_id, unusable)
            target = None
        if target is None:  # no target left (the first one is always there)
            assert last is not None and not last.ok
            last.error.attempted = tuple(tried[:-1])
            return last
        ctx.target = target
        if tried:
            ctx.state = None  # another model or node: nothing of the last target's lock holds
            ctx.last_error = None
        result = last = await attempts(op, ctx, target.url, headers, target.body)
        if result.ok:
            target = ctx.target  # a hedged copy to the next target may have answered
            value: Any = result.value
            meta = getattr(value, "meta", None)
            if meta is not None:
                meta.model = target.model
                meta.server_url = target.server_url
                if tried:
                    meta.fallbacks = tuple(tried)
                if ctx.hedged:
                    meta.hedged = True
            elif hasattr(type(value), "_served"):  # a stream: its collect() stamps meta later
                value._served = Served(target, tried, ctx.hedged)
            return result
        error = result.error
        if target.last or not can_fall_back(error):
            error.attempted = tuple(tried)
            return result
        tried.append(target.failure(error))
        log.info(
            "%s: %s at %s failed (%s): falling back", op.operation_id, target.model, target.server_url, error
        )


async def guarded_attempt(
    core: AtomaCore,
    op: Operation[Any, T],
    ctx: CallContext,
    url: Any,
    headers: dict[str, str],
    body: bytes | None,
    attempt: Attempt[T],
    failed_type: type[Any],
) -> T:
    """One attempt to the current target: ask its breaker, then the limiter; send (hedged if
    asked); tell the breaker and the latency book what happened. `failed_type` is the path's
    per-attempt failure (`error`, `retryable`): what this raises for a refusal too."""
    route: Route = ctx.route
    target: Target = ctx.target
    breaker = target.breaker
    if breaker is not None and breaker.state != "closed":  # closed: nothing to ask
        await _admit(ctx, route, target, failed_type)
    if route.limiter is not None:
        try:
            await route.limiter.acquire(0.0)
        except AtomaError as unavailable:
            if breaker is not None:
                breaker.abandon()
            raise failed_type(unavailable, False) from None
    sent = time.monotonic()
    inside = _inside_attempt.set(True) if route.nests else None
    try:
        if route.hedge is not None:
            value = await _hedged(core, op, ctx, url, headers, body, attempt, route.hedge)
        else:
            value = await attempt(core, op, ctx, url, headers, body)
            target.latencies.add(time.monotonic() - sent)  # type: ignore[union-attr]
    except failed_type as failed:
        error = failed.error
        if breaker is not None:
            breaker.record(can_fall_back(error))
        if route.limiter is not None and isinstance(error, APIError) and error.status_code == 429:
            await _slow_everyone(route.limiter, error.headers)
        raise
    except BaseException:
        if breaker is not None:
            breaker.abandon()
        raise
    finally:
        if inside is not None:
            _inside_attempt.reset(inside)
    answered = ctx.target.breaker  # a hedged copy may have answered from the next target
    if answered is not None:
        answered.record(False)
    if breaker is not None and breaker is not answered:
        breaker.abandon()  # its attempt was cancelled: no outcome
    return value


async def _admit(ctx: CallContext, route: Route, target: Target, failed_type: type[Any]) -> None:
    """Let the attempt through the breaker, or raise `CircuitOpenError` (as the path's failure);
    at the last target with `on_open="wait"`, wait for the half-open trial instead."""
    breaker = target.breaker
    assert breaker is not None
    loop = asyncio.get_running_loop()
    while True:
        blocked = breaker.blocked_for(time.monotonic())
        if blocked is None:
            return
        last = target.last
        due = ctx.deadline if ctx.deadline is not None else ctx.ready_by
        if not (last and route.on_open == "wait") or (due is not None and loop.time() + blocked > due):
            until = breaker.wall_until()
            message = (
                f"circuit open for {target.model or 'this operation'} at {target.server_url} "
                f"after {breaker.consecutive} failures: nothing sent; it half-opens in {blocked:.1f} s"
            )
            error = CircuitOpenError(
                message, server_url=target.server_url, model=target.model, until=until, retry_after=blocked
            )
            error.__cause__ = ctx.last_error
            raise failed_type(error, False)
        await breaker.wait_change(blocked or breaker.config.cooldown)


async def _slow_everyone(limiter: Any, headers: Mapping[str, str]) -> None:
    from ._retries import server_retry_after

    pause = server_retry_after(headers)
    try:
        await limiter.rate_limited(DEFAULT_PAUSE if pause is None else pause)
    except AtomaError:  # a limiter that cannot be told: the 429 itself is what the caller sees
        log.warning("the rate limiter could not be told of a 429")


def _twin(ctx: CallContext) -> CallContext:
    """A copy of the call's context for one racer (its own `state`: a confidential copy is
    sealed with its own key)."""
    twin = object.__new__(type(ctx))
    for name in type(ctx).__slots__:
        with contextlib.suppress(AttributeError):
            setattr(twin, name, getattr(ctx, name))
    return twin


async def _hedged(
    core: AtomaCore,
    op: Operation[Any, T],
    ctx: CallContext,
    url: Any,
    headers: dict[str, str],
    body: bytes | None,
    attempt: Attempt[T],
    hedge: Hedge,
) -> T:
    """The attempt raced against a copy sent after the hedge delay, within the budget."""
    route: Route = ctx.route
    target: Target = ctx.target
    state = route.state
    loop = asyncio.get_running_loop()
    first, second = _twin(ctx), _twin(ctx)
    second.attempts = ctx.attempts + 1
    started: dict[int, float] = {}
    copy_sent = False

    async def run(twin: CallContext) -> T:
        started[id(twin)] = loop.time()
        if twin is second:
            if hedge.to == "fallback":
                _aim_at_next(route, twin)
            if route.limiter is not None:  # a copy is a request like any other
                await route.limiter.acquire(0.0)
        aim: Target = twin.target
        return await attempt(core, op, twin, aim.url, headers, aim.body)

    def may_copy() -> bool:
        nonlocal copy_sent
        copy_sent = state.hedge.allow(hedge.budget)
        return copy_sent

    async def discard(is_copy: bool, value: Any) -> None:
        loser = second if is_copy else first
        loser.call = None  # its end is not the call's end
        closer = getattr(value, "aclose", None)
        if closer is not None:
            await closer()

    delay = state.hedge_delay(hedge, target.server_url, target.model)
    try:
        value, copy_won = await race(lambda: run(first), lambda: run(second), delay, may_copy, discard)
    finally:
        if copy_sent:  # the copy was an HTTP attempt of this call, whatever came of it
            ctx.attempts = max(ctx.attempts, second.attempts)
    if copy_sent:
        state.hedge.cancelled += 1  # the other one: cancelled, or closed after a tie
    winner = second if copy_won else first
    answered: Target = winner.target
    answered.latencies.add(loop.time() - started[id(winner)])  # type: ignore[union-attr]
    for name in ("attempts", "request_id", "state", "end_taken", "last_error", "target"):
        setattr(ctx, name, getattr(winner, name))
    if copy_sent:
        ctx.attempts = max(ctx.attempts, second.attempts)
    if copy_won:
        state.hedge.won += 1
        ctx.hedged = True
    return value


def _aim_at_next(route: Route, twin: CallContext) -> None:
    """Send a hedged copy to the next fallback target instead, if there is one whose breaker is
    closed (an open or half-open one gets nothing extra)."""
    target: Target = twin.target
    if target.last:
        return
    ahead = route.peek_target()
    if ahead is None or (ahead.breaker is not None and ahead.breaker.state != "closed"):
        return
    twin.target = ahead
    twin.state = None  # another model or node: nothing of this target's lock holds
    twin.last_error = None
