"""What `atoma batch` says on stderr: the running totals, a progress bar while stderr is a
terminal (tqdm, from the `progress` extra, if installed; else a plain line every few seconds),
and the one-line summary at the end."""

from __future__ import annotations

import contextlib
import importlib
import threading
import time
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from ._batch import BatchResult

__all__ = ["Progress", "Totals", "count_lines"]

PLAIN_INTERVAL = 5.0  # seconds between two plain progress lines
POSTFIX_INTERVAL = 0.5  # seconds between two updates of the bar's figures


def count_lines(path: str) -> int:
    """Non-blank lines in a file, read in blocks (the bar's total; may take a while)."""
    count = 0
    with open(path, "rb") as file:
        for line in file:
            count += bool(line.strip())
    return count


class Totals:
    """Running counts of one run, and its summary line."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.succeeded = self.failed = self.bad = self.skipped = self.skipped_failed = 0
        self.prompt_tokens = self.completion_tokens = self.total_tokens = 0

    def add(self, result: BatchResult) -> None:
        outcome = result.result
        if not outcome.ok:
            self.failed += 1
            return
        self.succeeded += 1
        usage = getattr(outcome.value, "usage", None)
        if usage is not None:
            self.prompt_tokens += usage.prompt_tokens
            self.completion_tokens += getattr(usage, "completion_tokens", 0)
            self.total_tokens += usage.total_tokens

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed

    def rate(self) -> float:
        return self.finished / max(time.monotonic() - self.started, 1e-9)

    def summary(self, interrupted: bool = False) -> str:
        elapsed = time.monotonic() - self.started
        head = "interrupted (rerun the same command to resume)" if interrupted else "done"
        parts = [f"batch {head}: {self.finished} requests, {self.succeeded} succeeded, {self.failed} failed"]
        if self.bad:
            parts.append(f"{self.bad} bad lines")
        if self.skipped:
            parts.append(f"{self.skipped} skipped, already in OUT ({self.skipped_failed} failed there)")
        parts.append(
            f"usage: {self.prompt_tokens} prompt + {self.completion_tokens} completion"
            f" = {self.total_tokens} tokens"
        )
        parts.append(f"{elapsed:.1f} s, {self.rate():.1f} requests/s")
        return " | ".join(parts)


def _count(bar: Any, path: str, already: int) -> None:
    with contextlib.suppress(OSError):
        bar.total = max(count_lines(path) - already, 0)


def _tqdm() -> Any:
    """tqdm's bar class, if the `progress` extra is installed."""
    try:
        return importlib.import_module("tqdm").tqdm
    except ImportError:
        return None


class Progress:
    """Shows the totals while the run goes on: a tqdm bar when `err` is a terminal and tqdm is
    installed, a plain line every few seconds on a terminal without it, nothing otherwise."""

    def __init__(self, err: TextIO, totals: Totals, input_path: str, already: int) -> None:
        self.err = err
        self.totals = totals
        self._shown = time.monotonic()
        self._bar: Any = None
        self._plain = False
        if not err.isatty():
            return
        tqdm = _tqdm()
        if tqdm is None:
            self._plain = True
            return
        self._bar = tqdm(total=None, unit="req", file=err, dynamic_ncols=True, smoothing=0.05)
        counter = threading.Thread(target=_count, args=(self._bar, input_path, already), daemon=True)
        counter.start()  # the total shows up once the input has been counted

    def step(self) -> None:
        """One more line dealt with: a result or a bad line."""
        now = time.monotonic()
        if self._bar is not None:
            self._bar.update(1)
            if now - self._shown >= POSTFIX_INTERVAL:
                totals = self.totals
                self._bar.set_postfix_str(
                    f"{totals.failed} failed, {totals.bad} bad, {totals.total_tokens} tokens", refresh=False
                )
                self._shown = now
        elif self._plain and now - self._shown >= PLAIN_INTERVAL:
            totals = self.totals
            self.note(
                f"atoma: batch: {totals.finished} done, {totals.failed} failed, {totals.bad} bad lines,"
                f" {totals.rate():.1f} requests/s, {totals.total_tokens} tokens"
            )
            self._shown = now

    def note(self, line: str) -> None:
        """A line on stderr that does not break the bar."""
        if self._bar is not None:
            self._bar.write(line, file=self.err)
        else:
            self.err.write(line + "\n")
            self.err.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
