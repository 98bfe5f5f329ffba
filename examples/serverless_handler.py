"""A serverless-style handler (AWS Lambda, Cloud Functions...): one `AtomaCore` and one event loop
per container, built and warmed at cold start.

`cold_start` runs in the init phase: `core.warm()` imports the HTTP stack, resolves the server's
name and opens a pooled connection there, so the first invocation neither imports nor connects
inside its event loop. Every invocation then runs on the container's loop and reuses that
connection. (`asyncio.run` per invocation works too: the core opens one HTTP session per event
loop and closes it when that loop shuts down, but each invocation then pays a new connection.)
Synchronous code can do the same with `AtomaSyncSDK`: build it and call `sdk.warm()` at cold start.

    python examples/serverless_handler.py             # against a sandbox started in a thread
    ATOMASDK_BEARER_AUTH=... python examples/serverless_handler.py https://api.atoma.network
    (or give the server as ATOMASDK_SERVER_URL instead of the argument)
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from atoma_core import AtomaCore, Err, Ok
from atoma_funcs import chat_create  # the standalone function: loads no stream code

MODEL = "meta-llama/Llama-3.3-70B-Instruct"

CORE: AtomaCore | None = None  # one per container
LOOP: asyncio.AbstractEventLoop | None = None  # one per container: invocations share its connections


def cold_start(server_url: str | None = None) -> tuple[AtomaCore, asyncio.AbstractEventLoop]:
    """Build the container's core (token from ATOMASDK_BEARER_AUTH) and loop, and warm them up.
    In a real deployment this runs at import time; here it is a function so tests can point it
    at a sandbox."""
    global CORE, LOOP
    CORE = AtomaCore(server_url=server_url)
    LOOP = asyncio.new_event_loop()
    warmed = LOOP.run_until_complete(CORE.warm())
    if isinstance(warmed, Err):  # not fatal: the first invocation connects (and retries) itself
        print(f"warm-up failed: {type(warmed.error).__name__}", file=sys.stderr)
    return CORE, LOOP


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
    core, loop = (CORE, LOOP) if CORE is not None and LOOP is not None else cold_start()
    return loop.run_until_complete(_handle(core, event))


def shutdown() -> None:
    """Close the session and the loop (a platform that freezes and drops containers skips this)."""
    global CORE, LOOP
    if CORE is not None and LOOP is not None:
        LOOP.run_until_complete(CORE.close())
        LOOP.run_until_complete(LOOP.shutdown_default_executor())  # DNS resolver threads
        LOOP.close()
    CORE = LOOP = None


def main(server_url: str | None = None) -> list[dict[str, Any]]:
    """Cold start, then two invocations on the container's loop, sharing the core."""
    cold_start(server_url)
    return [handler({"prompt": "first invocation"}), handler({"prompt": "second invocation"})]


if __name__ == "__main__":
    server_url = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("ATOMASDK_SERVER_URL")
    if server_url:
        results = main(server_url)
        shutdown()
    else:  # no server given: start the sandbox, on a loop of its own in a thread
        from atoma_core.testing import sandbox_in_thread

        with sandbox_in_thread() as sandbox:
            results = main(sandbox.url)
            shutdown()
    for result in results:
        print(result)
