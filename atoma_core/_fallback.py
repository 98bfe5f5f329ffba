"""Fallback targets: what a call may try after its own model and server, and which failures
send it there. The request path walks the list (`_request._targets`); this module only builds
it and judges errors.

A target is the call's request with `model` replaced, sent to its server or another one. The
first target is the call itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterator, cast

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


class Target:
    """One place to send the call: model, server (base URL), and the URL and body for them."""

    __slots__ = ("body", "breaker", "last", "latencies", "model", "server_url", "url")

    def __init__(self, model: str | None, server_url: str, url: Any, body: bytes | None, last: bool) -> None:
        self.model = model
        self.server_url = server_url
        self.url = url
        self.body = body
        self.last = last  # no fallback after it
        self.breaker: CircuitBreaker | None = None
        self.latencies: Latencies | None = None  # the core's book of its times to first byte

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
    fallbacks: tuple[Fallback, ...],
    with_model: Callable[[Any, str], bytes],
) -> Iterator[Target]:
    """Each fallback's target after the call's own (`first`), made only when the walk gets there:
    a call that succeeds at once pays for no URL or body of a fallback. `with_model(request,
    model)` encodes the request for another model."""
    own_model, own_server = first.model, first.server_url
    for i, entry in enumerate(fallbacks):
        model = own_model if entry.model is None or own_model is None else entry.model
        server = entry.server_url or own_server
        url = first.url if server == own_server else core.url(op.path, server)
        body = first.body if model == own_model else with_model(request, model)  # type: ignore[arg-type]
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
