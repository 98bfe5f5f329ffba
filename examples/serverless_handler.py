"""A serverless-style handler (AWS Lambda, Cloud Functions...): one `AtomaCore` per container.

The core is built once, at cold start, and reused by every invocation. Each invocation runs its
own `asyncio.run(...)`: the core opens one HTTP session per event loop and closes it when that loop
shuts down, so nothing leaks between invocations and nothing is "attached to a different loop".

    python examples/serverless_handler.py             # against a sandbox started in a thread
    ATOMASDK_BEARER_AUTH=... python examples/serverless_handler.py https://api.atoma.network
    (or give the server as ATOMASDK_SERVER_URL instead of the argument)
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def sandbox_in_thread() -> Iterator[str]:
    """A sandbox on its own event loop in a thread (the handler owns the main thread's loops)."""
    from atoma_core.testing import Sandbox

    loop = asyncio.new_event_loop()
    sandbox = Sandbox()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(sandbox.start(), loop).result()
    try:
        yield sandbox.url
    finally:
        asyncio.run_coroutine_threadsafe(sandbox.close(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


if __name__ == "__main__":
    server_url = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("ATOMASDK_SERVER_URL")
    if server_url:
        results = main(server_url)
    else:  # no server given: start the sandbox
        with sandbox_in_thread() as url:
            results = main(url)
    for result in results:
        print(result)
