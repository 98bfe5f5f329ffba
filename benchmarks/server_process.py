"""Start and stop the bench server (`benchmarks.server`) as a process of its own."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, Callable, Coroutine, TypeVar

T = TypeVar("T")

__all__ = ["ServerProcess", "median_ratio", "pin", "run_against"]


def pin(pid: int, cpu: int) -> None:
    """Keep a process (and what it starts) on one CPU, if the OS lets us."""
    with contextlib.suppress(OSError):
        os.sched_setaffinity(pid, {cpu})


class ServerProcess:
    """`with ServerProcess(python, root, cpu) as server:` ... `server.url`."""

    def __init__(self, python: str, root: Path, cpu: int | None = None) -> None:
        self.argv = [python, "-m", "benchmarks.server", "--port", "0"]
        self.root = root
        self.cpu = cpu
        self.url = ""
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> ServerProcess:
        self.proc = subprocess.Popen(
            self.argv, cwd=self.root, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
        )
        if self.cpu is not None:
            pin(self.proc.pid, self.cpu)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.__exit__(None, None, None)
            raise RuntimeError(f"bench server did not start (said {line!r})")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"
        return self

    def prime(self, models: list[str]) -> None:
        """Ask for each model once, so the server encodes its answer before anything is timed."""
        for model in models:
            body = json.dumps({"model": model, "messages": []}).encode()
            headers = {"Authorization": "Bearer prime", "Content-Type": "application/json"}
            request = urllib.request.Request(f"{self.url}/v1/chat/completions", body, headers)
            with urllib.request.urlopen(request, timeout=60) as response:
                response.read()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None


def run_against(model: str, measure: Callable[[str], Coroutine[Any, Any, T]]) -> T:
    """The set-up of the one-process tools (`pair`, `attribute`): start the bench server on
    CPU 1, ask it for `model` once, pin this process to CPU 0, run `measure(url)` on a new loop."""
    with ServerProcess(sys.executable, Path(__file__).resolve().parent.parent, 1) as server:
        server.prime([model])
        pin(0, 0)
        return asyncio.run(measure(server.url))


def median_ratio(values: list[float], floor: list[float]) -> float:
    """The median of per-round ratios: each figure over the floor's figure of the same round."""
    return statistics.median(value / base for value, base in zip(values, floor, strict=True))
