"""Fan-out: 100 prompts, at most `concurrency` in flight (an `asyncio.Semaphore`), tokens counted.

Standalone functions return a `Result`, so one failed prompt is a value to count, not an exception
that cancels the others. One `AtomaCore` (one connection pool) serves all requests.

    python examples/fan_out.py      # against a sandbox it starts
    ATOMASDK_SERVER_URL=https://api.atoma.network ATOMASDK_BEARER_AUTH=... python examples/fan_out.py
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from atoma_core import AtomaCore, Err, Ok
from atoma_funcs import chat_create

MODEL = "meta-llama/Llama-3.3-70B-Instruct"


class FanOut:
    """Runs prompts with bounded concurrency and keeps the tallies."""

    def __init__(self, core: AtomaCore, concurrency: int) -> None:
        self.core = core
        self.semaphore = asyncio.Semaphore(concurrency)
        self.in_flight = 0
        self.max_in_flight = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.errors: dict[str, int] = {}
        self.answers: list[str | None] = []

    async def ask(self, prompt: str) -> str | None:
        async with self.semaphore:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                request = {"model": MODEL, "messages": [{"role": "user", "content": prompt}]}
                result = await chat_create(self.core, request)
            finally:
                self.in_flight -= 1
        match result:
            case Ok(value=resp):
                if resp.usage is not None:
                    self.prompt_tokens += resp.usage.prompt_tokens
                    self.completion_tokens += resp.usage.completion_tokens
                return resp.choices[0].message.content
            case Err(error=error):
                name = type(error).__name__
                self.errors[name] = self.errors.get(name, 0) + 1
                return None
        raise AssertionError("unreachable")

    async def run(self, prompts: list[str]) -> list[str | None]:
        self.answers = await asyncio.gather(*(self.ask(p) for p in prompts))
        return self.answers


async def main(server_url: str | None = None, n: int = 100, concurrency: int = 10) -> dict[str, Any]:
    """Send `n` prompts to `server_url` or $ATOMASDK_SERVER_URL (else a sandbox); return the tallies."""
    from contextlib import AsyncExitStack

    server_url = server_url or os.environ.get("ATOMASDK_SERVER_URL")
    async with AsyncExitStack() as stack:
        if server_url is None:  # no server given: start the sandbox
            from atoma_core.testing import Sandbox

            server_url = (await stack.enter_async_context(Sandbox())).url
        core = await stack.enter_async_context(AtomaCore(server_url=server_url))
        fan = FanOut(core, concurrency)
        started = time.perf_counter()
        answers = await fan.run([f"prompt number {i}" for i in range(n)])
        elapsed = time.perf_counter() - started
    return {
        "ok": sum(a is not None for a in answers),
        "errors": fan.errors,
        "prompt_tokens": fan.prompt_tokens,
        "completion_tokens": fan.completion_tokens,
        "max_in_flight": fan.max_in_flight,
        "seconds": round(elapsed, 3),
        "answers": answers,
    }


if __name__ == "__main__":
    summary = asyncio.run(main())
    summary.pop("answers")
    print(summary)
