"""atoma-sdk 0.1.3 from PyPI (Speakeasy-generated, httpx + pydantic), run from its own venv.

Its default httpx client keeps 20 idle connections and times out reads after 5 s; it gets a pool
as large as the workload needs and a 60 s timeout, so the figures show the SDK, not the pool."""

from __future__ import annotations

from typing import Awaitable, Callable

import httpx
from atoma_sdk import AtomaSDK

from . import MESSAGES, TOKEN, no_hold


class AtomaSDKClient:
    def __init__(self, url: str, connections: int) -> None:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        http = httpx.AsyncClient(limits=limits, timeout=60.0)
        self.sdk = AtomaSDK(bearer_auth=TOKEN, server_url=url, async_client=http)

    async def complete(self, model: str) -> tuple[int, int]:
        response = await self.sdk.chat.create_async(model=model, messages=MESSAGES)
        content = response.choices[0].message.content
        usage = response.usage
        return len(content or ""), usage.completion_tokens if usage else 0

    async def stream(
        self, model: str, hold: Callable[[], Awaitable[None]] = no_hold, hold_at: int = 0
    ) -> tuple[int, int, int]:
        stream = await self.sdk.chat.create_stream_async(model=model, messages=MESSAGES)
        chunks = chars = tokens = 0
        async with stream:
            async for event in stream:
                chunk = event.data
                chunks += 1
                if chunk.choices:
                    content = chunk.choices[0].delta.content
                    if content:
                        chars += len(content)
                elif chunk.usage is not None:
                    tokens = chunk.usage.completion_tokens
                if chunks == hold_at:
                    await hold()
        return chunks, chars, tokens

    async def aclose(self) -> None:
        await self.sdk.__aexit__(None, None, None)


async def connect(url: str, variant: str, connections: int) -> AtomaSDKClient:
    return AtomaSDKClient(url, connections)
