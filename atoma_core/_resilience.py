"""What a core remembers between calls for fallbacks, hedging and breakers: the breakers per
(server, model), the recent times to first byte per (server, model), and the hedge budget's
counts. One per `AtomaCore`, created with it when any of those is configured, else on the first
call that asks for one. `AtomaCore.health()` returns it as plain data.
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING, Any, Callable

from ._breaker import CircuitBreaker, notifier

if TYPE_CHECKING:
    from .config import Breaker, Hedge, Hooks

__all__ = ["HedgeBudget", "Resilience"]

SAMPLES = 256  # times to first byte kept per (server, model)


class HedgeBudget:
    """Counts of the calls that could be hedged and the copies sent. A copy may go only while
    `hedged + 1 <= budget * calls`, so the extra requests never exceed the budget's share."""

    __slots__ = ("calls", "cancelled", "hedged", "refused", "won")

    def __init__(self) -> None:
        self.calls = 0
        self.hedged = 0
        self.won = 0  # copies that answered first
        self.refused = 0  # copies not sent: over budget
        self.cancelled = 0  # losers cancelled (first attempt or copy)

    def allow(self, budget: float) -> bool:
        if self.hedged + 1 <= budget * self.calls + 1e-9:
            self.hedged += 1
            return True
        self.refused += 1
        return False

    def snapshot(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "hedged": self.hedged,
            "won": self.won,
            "refused": self.refused,
            "cancelled": self.cancelled,
            "extra_share": self.hedged / self.calls if self.calls else 0.0,
        }


class Latencies:
    """The recent times to first byte (seconds) of one (server, model), newest last."""

    __slots__ = ("_sorted", "breaker", "samples")

    def __init__(self, breaker: CircuitBreaker | None) -> None:
        self.samples: deque[float] = deque(maxlen=SAMPLES)
        self._sorted: list[float] | None = None  # made by the first `quantile` after a change
        self.breaker = breaker  # of the same (server, model), if the core keeps breakers

    def add(self, seconds: float) -> None:
        self.samples.append(seconds)
        self._sorted = None

    def quantile(self, q: float) -> float:
        """The `q` quantile (nearest rank) of the samples; sorted once per change."""
        ordered = self._sorted
        if ordered is None:
            ordered = self._sorted = sorted(self.samples)
        rank = max(0, math.ceil(q * len(ordered)) - 1)
        return ordered[rank]


class Resilience:
    """Per-core state: a latency book per (server, model), each with its breaker; the hedge budget."""

    def __init__(self, breaker: Breaker | None, hooks_of: Callable[[], tuple[Hooks, ...]]) -> None:
        self.breaker = breaker
        # The books by server, then model (no key tuple to make per call); each holds its breaker.
        self.books: dict[str, dict[str | None, Latencies]] = {}
        self.hedge = HedgeBudget()
        self._notify = notifier(hooks_of)

    def of(self, server_url: str, model: str | None) -> Latencies:
        """The latency book of this target, with its breaker (None without `Breaker` config),
        made on first use: one lookup per target of a call."""
        books = self.books.get(server_url)
        if books is None:
            books = self.books[server_url] = {}
        book = books.get(model)
        if book is None:
            breaker = None
            if self.breaker is not None:
                breaker = CircuitBreaker(self.breaker, server_url, model, self._notify)
            book = books[model] = Latencies(breaker)
        return book

    def hedge_delay(self, hedge: Hedge, server_url: str, model: str | None) -> float:
        """The wait before a copy: fixed, or the learned quantile once enough samples are in."""
        if hedge.delay is not None:
            return hedge.delay
        book = self.books.get(server_url, {}).get(model)
        if book is None or len(book.samples) < hedge.min_samples:
            return hedge.initial_delay
        return book.quantile(hedge.quantile)

    def snapshot(self) -> dict[str, Any]:
        """Everything as plain data: lists of dicts, numbers, strings, None."""
        breakers, latencies = [], []
        for server_url, books in self.books.items():
            for model, book in books.items():
                if book.breaker is not None:
                    breakers.append(book.breaker.snapshot())
                if book.samples:  # else nothing answered there yet
                    latencies.append(
                        {
                            "server_url": server_url,
                            "model": model,
                            "samples": len(book.samples),
                            "p50": book.quantile(0.5),
                            "p95": book.quantile(0.95),
                            "p99": book.quantile(0.99),
                        }
                    )
        return {
            "breakers": breakers,
            "latencies": latencies,
            "hedge": self.hedge.snapshot(),
        }
