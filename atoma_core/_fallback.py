"""Fallback targets: what a call may try after its own model and server, and which failures
send it there. The request path walks the list (`_route._fall_back`); this module only builds
it and judges errors.

A target is the call's request with `model` replaced, sent to its server or another one. The
first target is the call itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterator, cast

import msgspec

from .errors import (
    APIConnectionError,
    APIError,
    AtomaError,
    CircuitOpenError,
    RequestTimeoutError,
)
from .models.meta import FallbackFailure

if TYPE_CHECKING:
    from ._breaker import CircuitBreaker
    from ._operation import Operation
    from ._resilience import Latencies
    from .config import Fallback, RequestOptions
    from .core import AtomaCore

__all__ = ["Target", "can_fall_back", "fallback_targets", "usable_fallbacks"]

# 423/425: a confidential node locked or not ready, after the call's own retries (relock).
_FALLBACK_STATUSES = frozenset({423, 425, 429})
_BEFORE_FIRST_BYTE = frozenset({"connect", "read", "first_token", "idle"})


class Target(msgspec.Struct, gc=False):
    """One place to send the call: model, server (base URL), and the URL and body for them; the
    core's book of its times to first byte, and its breaker (None: none asked, as for a call made
    inside another's attempt). A call's own target is kept and shared by every call to the same
    (server, model): its `body` is None, each call sends its own. A fallback's is made per call,
    with its body. A Struct, made in C; nothing it holds refers back to it, so the garbage
    collector need not track it."""

    model: str | None
    server_url: str
    url: Any
    body: bytes | None
    last: bool  # no fallback after it
    latencies: Latencies | None = None
    breaker: CircuitBreaker | None = None

    def failure(self, error: AtomaError) -> FallbackFailure:
        return FallbackFailure(model=self.model, server_url=self.server_url, error=error)


def fallbacks_of(core: AtomaCore, options: RequestOptions | None) -> tuple[Fallback, ...]:
    """The call's fallbacks: its options' if set (an empty list turns the core's off), else the core's."""
    if options is not None and options.fallbacks is not None:
        return cast("tuple[Fallback, ...]", options.fallbacks)  # made a tuple of them when built
    return core.fallbacks


def usable_fallbacks(own_model: str | None, fallbacks: tuple[Fallback, ...]) -> tuple[Fallback, ...]:
    """The entries that can apply: one naming only a model is skipped for an operation whose
    request has none (listing models, health)."""
    if own_model is not None:
        return fallbacks
    return tuple(entry for entry in fallbacks if entry.server_url is not None)


def fallback_targets(
    core: AtomaCore,
    op: Operation[Any, Any],
    request: Any,
    first: Target,
    body: bytes | None,
    fallbacks: tuple[Fallback, ...],
    with_model: Callable[[Any, str], bytes],
) -> Iterator[Target]:
    """Each fallback's target after the call's own (`first`, whose body is the call's `body`),
    made only when the walk gets there: a call that succeeds at once pays for no URL or body of
    a fallback. `with_model(request, model)` encodes the request for another model."""
    own_model, own_server = first.model, first.server_url
    own_body = body
    for i, entry in enumerate(fallbacks):
        model = own_model if entry.model is None or own_model is None else entry.model
        server = entry.server_url or own_server
        url = first.url if server == own_server else core.url(op.path, server)
        body = own_body if model == own_model else with_model(request, model)  # type: ignore[arg-type]
        yield Target(model, server, url, body, last=i == len(fallbacks) - 1)


def can_fall_back(error: AtomaError) -> bool:
    """Whether another target may succeed where this one failed: overload, server errors, a lost
    connection, an open breaker, a first byte that never came. Never a 4xx that says the request
    is wrong, nor a call whose own deadline has passed (no time is left for another target)."""
    if isinstance(error, APIError):
        return error.status_code >= 500 or error.status_code in _FALLBACK_STATUSES
    if isinstance(error, RequestTimeoutError):
        return error.phase in _BEFORE_FIRST_BYTE
    return isinstance(error, (APIConnectionError, CircuitOpenError))
