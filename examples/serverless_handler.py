"""A serverless-style handler (AWS Lambda, Cloud Functions...): one `AtomaCore` per container.

The core is built once, at cold start, and reused by every invocation. Each invocation runs its
own `asyncio.run(...)`: the core opens one HTTP session per event loop and closes it when that loop
shuts down, so nothing leaks between invocations and nothing is "attached to a different loop".

    python examples/serverless_handler.py             # against a sandbox started in a thread
    ATOMASDK_BEARER_AUTH=... python examples/serverless_handler.py https://api.atoma.network
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from atoma_core import AtomaCore, Err, Ok
from atoma_funcs import chat_create  # the standalone function: loads no stream code

MODEL = "meta-llama/Llama-3.3-70B-Instruct"

CORE: AtomaCore | None = None  # one per container


def cold_start(server_url: str | None = None) -> AtomaCore:
    """Build the container's core (token from ATOMASDK_BEARER_AUTH). In a real deployment this
    runs at import time; here it is a function so tests can point it at a sandbox."""
    global CORE
    CORE = AtomaCore(server_url=server_url)
    return CORE


async def _handle(core: AtomaCore, event: dict[str, Any]) -> dict[str, Any]:
    request = {"model": MODEL, "messages": [{"role": "user", "content": event["prompt"]}]}
    match await chat_create(core, request):
        case Ok(value=resp):
            usage = resp.usage
            body = {
                "answer": resp.choices[0].message.content,
                "total_tokens": usage.total_tokens if usage else None,
                "request_id": resp.meta.request_id if resp.meta else None,
            }
            return {"statusCode": 200, "body": json.dumps(body)}
        case Err(error=error):
            return {"statusCode": 502, "body": json.dumps({"error": type(error).__name__})}
    raise AssertionError("unreachable")


def handler(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    """The entry point the platform calls, synchronously, once per invocation."""
    core = CORE if CORE is not None else cold_start()
    return asyncio.run(_handle(core, event))


def main(server_url: str | None = None) -> list[dict[str, Any]]:
    """Cold start, then two invocations, each in its own `asyncio.run`, sharing the core."""
    cold_start(server_url)
    return [handler({"prompt": "first invocation"}), handler({"prompt": "second invocation"})]


if __name__ == "__main__":
    if len(sys.argv) > 1:
        results = main(sys.argv[1])
    else:
        # The sandbox gets a loop of its own in a thread: the handler owns the main thread's loops.
        from atoma_core.testing import sandbox_in_thread

        with sandbox_in_thread() as sandbox:
            results = main(sandbox.url)
    for result in results:
        print(result)
