"""An aiohttp.web endpoint that relays an Atoma chat stream to its own clients as Server-Sent Events.

`GET /chat?prompt=...` answers `text/event-stream`: one `data: {"delta": ...}` event per piece of
text, then `event: usage` with the token counts and timings, then `data: [DONE]`. A failure before
the stream starts becomes a 502 JSON answer; a failure mid-stream becomes an `event: error`.
When the client goes away, leaving `async with stream` closes the upstream request too.

    python examples/relay_sse.py      # starts a sandbox and the relay, then reads one answer
    ATOMASDK_SERVER_URL=https://api.atoma.network ATOMASDK_BEARER_AUTH=... python examples/relay_sse.py
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from atoma_core.errors import AtomaError
from atoma_funcs import AtomaSDK

MODEL = "meta-llama/Llama-3.3-70B-Instruct"
SDK = web.AppKey("sdk", AtomaSDK)


def _event(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


async def chat(request: web.Request) -> web.StreamResponse:
    """Relay one chat completion as SSE."""
    prompt = request.query.get("prompt", "")
    if not prompt:
        return web.json_response({"error": "missing ?prompt="}, status=400)
    sdk = request.app[SDK]
    try:
        stream = await sdk.chat.create_stream(model=MODEL, messages=[{"role": "user", "content": prompt}])
    except AtomaError as error:  # nothing sent yet: an ordinary error answer
        return web.json_response({"error": type(error).__name__, "message": str(error)}, status=502)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    async with stream:  # closes the upstream request however this block ends
        try:
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    await response.write(_event({"delta": chunk.choices[0].delta.content}))
        except AtomaError as error:
            await response.write(_event({"error": type(error).__name__, "message": str(error)}, "error"))
            return response
    usage = stream.usage
    metrics = stream.metrics
    await response.write(
        _event(
            {
                "prompt_tokens": usage.prompt_tokens if usage else None,
                "completion_tokens": usage.completion_tokens if usage else None,
                "time_to_first_token": metrics.time_to_first_token,
                "tokens_per_second": metrics.tokens_per_second,
            },
            "usage",
        )
    )
    await response.write(b"data: [DONE]\n\n")
    return response


def make_app(server_url: str | None = None) -> web.Application:
    """The relay application; one `AtomaSDK` for the app's lifetime, closed at shutdown."""

    async def sdk_context(app: web.Application) -> AsyncIterator[None]:
        async with AtomaSDK(server_url=server_url) as sdk:
            app[SDK] = sdk
            yield

    app = web.Application()
    app.cleanup_ctx.append(sdk_context)
    app.router.add_get("/chat", chat)
    return app


async def read_sse(url: str, prompt: str) -> list[tuple[str, str]]:
    """A minimal SSE client: (event name, data) pairs until `[DONE]` or the end of the body."""
    events: list[tuple[str, str]] = []
    async with aiohttp.ClientSession() as session, session.get(url, params={"prompt": prompt}) as resp:
        name = "message"
        async for raw in resp.content:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                if line[6:] == "[DONE]":
                    break
                events.append((name, line[6:]))
                name = "message"
    return events


async def main(server_url: str | None = None, prompt: str = "Relay me, please") -> dict[str, Any]:
    """Start the relay on `server_url` or $ATOMASDK_SERVER_URL (else on a sandbox it starts), ask
    it one question, return the result."""
    from contextlib import AsyncExitStack

    server_url = server_url or os.environ.get("ATOMASDK_SERVER_URL")
    async with AsyncExitStack() as stack:
        if server_url is None:  # no server given: start the sandbox
            from atoma_core.testing import Sandbox

            server_url = (await stack.enter_async_context(Sandbox())).url
        runner = web.AppRunner(make_app(server_url))
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        events = await read_sse(f"http://127.0.0.1:{port}/chat", prompt)
    text = "".join(json.loads(data)["delta"] for name, data in events if name == "message")
    usage = next((json.loads(data) for name, data in events if name == "usage"), None)
    errors = [json.loads(data) for name, data in events if name == "error"]
    return {"text": text, "usage": usage, "errors": errors, "events": len(events)}


if __name__ == "__main__":
    print(asyncio.run(main()))
