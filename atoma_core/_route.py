"""The request path's per-call choices (used only when something is configured, so a plain call
never comes here): which target to try (the call's own, then its fallbacks), whether the
target's breaker lets an attempt through, the shared rate limiter, and a hedged copy.

The request path runs its retry loop on the call's own target, then `served` stamps what
answered, or `fall_back` walks the other targets, each with that retry loop. An attempt that
needs nothing but a closed breaker's word (`direct_target`) is sent as a plain one and its
outcome told to the breaker and the latency book (`answered`, `failed_at`); any other goes
through `guarded_attempt`. They get the path's functions as arguments, so this module never
imports `_request` (data still flows one way).

What a call needs when nothing fails is worked out once and kept: per core (or per options
object) a `Policy`, per operation a `Lane`, per (server, model) the call's own `Target` with its
breaker and latency book. A call that succeeds at once looks them up and allocates nothing here.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterator, Mapping, TypeVar

from ._fallback import Target, can_fall_back, fallback_targets, fallbacks_of, usable_fallbacks
from ._hedge import hedged_attempt
from .config import shown_url
from .errors import APIError, AtomaError, CircuitOpenError
from .limiter import UNLIMITED

if TYPE_CHECKING:
    from ._operation import CallContext, Operation
    from .config import Fallback, RequestOptions
    from .core import AtomaCore
    from .models.meta import FallbackFailure, ResponseMeta
    from .result import Ok, Result

__all__ = [
    "Lane",
    "Policy",
    "answered",
    "direct_target",
    "fall_back",
    "failed_at",
    "guarded_attempt",
    "plan",
    "served",
]

log = logging.getLogger("atoma")
T = TypeVar("T")
DEFAULT_PAUSE = 1.0  # seconds everyone sharing a limiter waits after a 429 without Retry-After
OPTION_POLICIES = 64  # options objects whose policy a core keeps (then it starts again)
LANES = 64  # operations whose lane a policy keeps (some layers make an operation per call)
# Set while an attempt runs: a call made inside it (a confidential node lock) is part of that
# attempt, which its breaker has already let through (as the half-open trial, maybe): no own
# breaker, no hedge, no fallback (a lock from another server would not fit this target).
_inside_attempt: contextvars.ContextVar[bool] = contextvars.ContextVar("atoma_inside_attempt", default=False)

Attempt = Callable[
    ["AtomaCore", "Operation[Any, T]", "CallContext", Any, dict[str, str], "bytes | None"], Awaitable[T]
]
Encode = Callable[["Operation[Any, Any]", Any, str, "Mapping[str, Any] | None"], bytes]
"""How a fallback's body is made: (op, validated request, model, extra_body) -> encoded request."""
Attempts = Callable[
    ["Operation[Any, T]", "CallContext", Any, dict[str, str], "bytes | None"],
    Awaitable["Result[T, AtomaError]"],
]


class Policy:
    """What a call's options and its core's defaults decide before the request is known: the
    fallbacks, the hedge, the limiter, what an open breaker does at the last target; and the
    lanes made from them, per operation. Kept by the core: one for calls without resilience
    options of their own (`core.route_policy`), one per options object that has some."""

    __slots__ = ("fallbacks", "hedge", "inner_lanes", "lanes", "limiter", "on_open", "state")

    def __init__(self, core: AtomaCore, options: RequestOptions | None) -> None:
        state = self.state = core.resilience or core.resilience_state()
        self.fallbacks = fallbacks_of(core, options)
        self.hedge = core.hedge if options is None or options.hedge is None else options.hedge
        limiter = core.limiter if options is None or options.limiter is None else options.limiter
        self.limiter = None if limiter is UNLIMITED else limiter
        on_open = options.on_circuit_open if options is not None and options.on_circuit_open else None
        if on_open is None:
            on_open = state.breaker.on_open if state.breaker is not None else "fail"
        self.on_open: str = on_open
        self.lanes: dict[Operation[Any, Any], Lane] = {}
        self.inner_lanes: dict[Operation[Any, Any], Lane] = {}  # for calls made inside an attempt


def _policy(core: AtomaCore, options: RequestOptions | None) -> Policy:
    """The call's policy: the core's, or the one kept for its options object (by identity; the
    entry holds the object, so its id is not reused while kept)."""
    if options is None or not options.resilient:
        policy = core.route_policy
        if policy is None:
            policy = core.route_policy = Policy(core, None)
        return policy  # type: ignore[no-any-return]
    kept: dict[int, tuple[RequestOptions, Policy]] = core.option_policies
    entry = kept.get(id(options))
    if entry is not None and entry[0] is options:
        return entry[1]
    if len(kept) >= OPTION_POLICIES:  # options made per call must not grow it for ever
        kept.clear()
    policy = Policy(core, options)
    kept[id(options)] = (options, policy)
    return policy


class Lane:
    """A policy applied to one operation: its fallbacks and hedge (only an idempotent operation
    is hedged, unless the user opted in), whether its attempts are `direct` (no hedge, no
    limiter, no nested call: nothing but the breaker's word), and the call's own target per
    (server, model), made on first use and shared by every call that goes there."""

    __slots__ = ("breakers", "direct", "encode", "fallbacks", "hedge", "policy", "targets")

    def __init__(self, policy: Policy, op: Operation[Any, Any], nested: bool, encode: Encode) -> None:
        self.policy = policy
        self.encode = encode
        self.breakers = not nested  # a call inside an attempt was let through by that attempt's breaker
        self.fallbacks: tuple[Fallback, ...] = () if nested else policy.fallbacks
        hedge = None if nested else policy.hedge
        if hedge is not None and not (op.idempotent or hedge.non_idempotent):
            hedge = None  # it would change server state twice: only on the user's word
        self.hedge = hedge
        self.direct = hedge is None and policy.limiter is None and op.build_body is None
        self.targets: dict[str, dict[str | None, Target]] = {}

    def first(self, server_url: str, model: str | None, url: Any) -> Target:
        """The call's own target (its body is the call's: None here), made once per (server, model)."""
        targets = self.targets.get(server_url)
        if targets is None:
            targets = self.targets[server_url] = {}
        target = targets.get(model)
        if target is None:
            book = self.policy.state.of(server_url, model)
            last = not usable_fallbacks(model, self.fallbacks)
            breaker = book.breaker if self.breakers else None
            target = targets[model] = Target(model, server_url, url, None, last, book, breaker)
        return target


class Walk:
    """One call's way past its own target: the fallbacks' targets, made only when the walk
    reaches them (a call that succeeds at once pays for no URL or body of a fallback), and one
    made early for a hedged copy (`ahead`)."""

    __slots__ = ("ahead", "body", "first", "lane", "op", "request", "rest")

    def __init__(
        self, lane: Lane, op: Operation[Any, Any], first: Target, request: Any, body: bytes | None
    ) -> None:
        self.lane = lane
        self.op = op
        self.first = first
        self.request = request
        self.body = body  # the call's own
        self.rest: Iterator[Target] | None = None
        self.ahead: Target | None = None

    def next_target(self, ctx: CallContext) -> Target | None:
        """The next fallback target of the walk (None: no more), with its breaker."""
        target, self.ahead = self.ahead, None
        if target is None:
            rest = self.rest
            if rest is None:
                lane = self.lane
                extra_body = ctx.options.extra_body if ctx.options is not None else None
                encode, op = lane.encode, self.op

                def with_model(request: Any, model: str) -> bytes:
                    return encode(op, request, model, extra_body)

                fallbacks = usable_fallbacks(self.first.model, lane.fallbacks)
                rest = self.rest = fallback_targets(
                    ctx.core, op, self.request, self.first, self.body, fallbacks, with_model
                )
            target = next(rest, None)
            if target is not None:
                book = target.latencies = self.lane.policy.state.of(target.server_url, target.model)
                target.breaker = book.breaker
        return target

    def peek_target(self, ctx: CallContext) -> Target | None:
        """The target after the current one, without walking to it (a hedged copy may go there)."""
        if self.ahead is None:
            self.ahead = self.next_target(ctx)
        return self.ahead


class Served:
    """What answered, for the value's `meta`: model, server, the targets tried before, hedged."""

    __slots__ = ("fallbacks", "hedged", "model", "server_url")

    def __init__(self, target: Target, tried: tuple[FallbackFailure, ...], hedged: bool) -> None:
        self.model = target.model
        self.server_url = target.server_url
        self.fallbacks = tried
        self.hedged = hedged

    def apply(self, meta: ResponseMeta | None) -> None:
        if meta is not None:
            meta.model = self.model
            meta.server_url = self.server_url
            meta.fallbacks = self.fallbacks
            meta.hedged = self.hedged


def plan(
    ctx: CallContext,
    op: Operation[Any, Any],
    request: Any,
    body: bytes | None,
    url: Any,
    server_url: str | None,
    encode: Encode,
) -> None:
    """The call's lane (`ctx.route`) and own target (`ctx.target`): looked up, made only by the
    first call of a kind. A hedged call also gets its walk now (`ctx.walk`: a copy may go to the
    next target); any other makes one only if its own target fails."""
    core, options = ctx.core, ctx.options
    policy = core.route_policy if options is None else None
    if policy is None:
        policy = _policy(core, options)
    nested = _inside_attempt.get()  # part of an attempt to one target: it stays on that target
    lanes = policy.inner_lanes if nested else policy.lanes
    lane = lanes.get(op)
    if lane is None:
        if len(lanes) >= LANES:
            lanes.clear()
        lane = lanes[op] = Lane(policy, op, nested, encode)
    ctx.route = lane
    target = ctx.target = lane.first(server_url or core.server_url, getattr(request, "model", None), url)
    if lane.hedge is not None:
        policy.state.hedge.calls += 1
        ctx.walk = Walk(lane, op, target, request, body)


def served(op: Operation[Any, Any], ctx: CallContext, result: Ok[T]) -> Ok[T]:
    """The call's own target answered. A decoded body's meta names it already (`stamp_meta`
    reads `ctx.target`); a stream's, or a hedged call's, is stamped here (`_served`)."""
    if op.streams or ctx.hedged:
        _served(ctx, result.value, ())
    return result


async def fall_back(
    op: Operation[Any, T],
    ctx: CallContext,
    request: Any,
    body: bytes | None,
    headers: dict[str, str],
    attempts: Attempts[T],
    result: Result[T, AtomaError],
) -> Result[T, AtomaError]:
    """The call's own target failed with `result`: if another target can help, the next
    targets, each with the path's retry loop (`attempts`), until one answers or a failure that
    no other target can help (a bad request). All failing: the last target's error, the earlier
    ones on its `attempted`."""
    lane: Lane = ctx.route
    target: Target = ctx.target
    walk: Walk | None = None
    tried: list[FallbackFailure] = []
    while True:
        assert not result.ok
        error = result.error
        if target.last or not can_fall_back(error):
            error.attempted = tuple(tried)
            return result
        tried.append(target.failure(error))
        shown = shown_url(target.server_url)
        log.info("%s: %s at %s failed (%s): falling back", op.operation_id, target.model, shown, error)
        if walk is None:
            walk = ctx.walk if lane.hedge is not None else Walk(lane, op, target, request, body)
        try:
            next_target = walk.next_target(ctx)
        except AtomaError as unusable:  # a fallback's request that cannot be encoded
            log.warning("%s: a fallback cannot be tried: %s", op.operation_id, unusable)
            next_target = None
        if next_target is None:  # no target left: the last failure, the earlier ones on it
            error.attempted = tuple(tried[:-1])
            return result
        target = ctx.target = next_target
        ctx.state = None  # another model or node: nothing of the last target's lock holds
        ctx.last_error = None
        result = await attempts(op, ctx, target.url, headers, target.body)
        if result.ok:
            _served(ctx, result.value, tuple(tried))
            return result


def _served(ctx: CallContext, value: Any, tried: tuple[FallbackFailure, ...]) -> None:
    """Stamp what answered on the value's meta (a hedged copy to the next target may have:
    `ctx.target`); a stream's `collect()` stamps it later."""
    served = Served(ctx.target, tried, ctx.hedged)
    meta = getattr(value, "meta", None)
    if meta is not None:
        served.apply(meta)
    elif hasattr(type(value), "_served"):
        value._served = served


def direct_target(ctx: CallContext) -> Target | None:
    """The current target if this attempt needs nothing but its breaker's word and the breaker
    is closed: the path sends it as a plain attempt, then tells `answered` or `failed_at`.
    None: the attempt goes through `guarded_attempt`."""
    target: Target = ctx.target
    if not ctx.route.direct:
        return None
    breaker = target.breaker
    return target if breaker is None or breaker.state == "closed" else None


def answered(target: Target, sent: float) -> None:
    """A direct attempt answered: its time to first byte into the book, a success to the breaker."""
    target.latencies.add(time.monotonic() - sent)  # type: ignore[union-attr]
    breaker = target.breaker
    if breaker is not None:
        if breaker.quiet:  # closed, a window of successes: one more changes only the count
            breaker.successes += 1
        else:
            breaker.record(False)


def failed_at(target: Target, error: AtomaError) -> None:
    """A direct attempt failed: the breaker counts it if another target might have answered."""
    if target.breaker is not None:
        target.breaker.record(can_fall_back(error))


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
    """One attempt to the current target with more to do than a direct one: ask its breaker
    (or wait), then the limiter; send (hedged if asked); tell the breaker and the latency book
    what happened. `failed_type` is the path's per-attempt failure (`error`, `retryable`): what
    this raises for a refusal too."""
    lane: Lane = ctx.route
    policy = lane.policy
    target: Target = ctx.target
    breaker = target.breaker
    if breaker is not None and breaker.state != "closed":  # closed: nothing to ask
        await _admit(ctx, lane, target, failed_type)
    limiter = policy.limiter
    if limiter is not None:
        try:
            await limiter.acquire(0.0)
        except AtomaError as unavailable:
            if breaker is not None:
                breaker.abandon()
            raise failed_type(unavailable, False) from None
    sent = time.monotonic()
    inside = _inside_attempt.set(True) if op.build_body is not None else None
    try:
        if lane.hedge is not None:
            value = await hedged_attempt(core, op, ctx, url, headers, body, attempt, lane.hedge)
        else:
            value = await attempt(core, op, ctx, url, headers, body)
            target.latencies.add(time.monotonic() - sent)  # type: ignore[union-attr]
    except failed_type as failed:
        error = failed.error
        if breaker is not None:
            breaker.record(can_fall_back(error))
        if limiter is not None and isinstance(error, APIError) and error.status_code == 429:
            await _slow_everyone(limiter, error.headers)
        raise
    except BaseException:
        if breaker is not None:
            breaker.abandon()
        raise
    finally:
        if inside is not None:
            _inside_attempt.reset(inside)
    answered_by = ctx.target.breaker  # a hedged copy may have answered from the next target
    if answered_by is not None:
        answered_by.record(False)
    if breaker is not None and breaker is not answered_by:
        breaker.abandon()  # its attempt was cancelled: no outcome
    return value


async def _admit(ctx: CallContext, lane: Lane, target: Target, failed_type: type[Any]) -> None:
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
        if not (last and lane.policy.on_open == "wait") or (due is not None and loop.time() + blocked > due):
            until = breaker.wall_until()
            message = (
                f"circuit open for {target.model or 'this operation'} at {shown_url(target.server_url)} "
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
