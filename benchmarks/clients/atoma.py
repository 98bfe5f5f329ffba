"""This SDK: `chat_create` / `chat_create_stream` over one `AtomaCore`, default options."""

from __future__ import annotations

from typing import Awaitable, Callable

from atoma_core import AtomaCore
from atoma_funcs import chat_create

from . import MESSAGES, TOKEN, no_hold


class AtomaClient:
    def __init__(self, url: str, connections: int) -> None:
        self.core = AtomaCore(bearer_auth=TOKEN, server_url=url, connection_limit=connections)

    async def complete(self, model: str) -> tuple[int, int]:
        response = (await chat_create(self.core, {"model": model, "messages": MESSAGES})).unwrap()
        content = response.choices[0].message.content
        return len(content or ""), response.usage.completion_tokens if response.usage else 0

    async def stream(
        self, model: str, hold: Callable[[], Awaitable[None]] = no_hold, hold_at: int = 0
    ) -> tuple[int, int, int]:
        from atoma_funcs import chat_create_stream  # imported on first use, as an app would

        result = await chat_create_stream(self.core, {"model": model, "messages": MESSAGES})
        chunks = chars = 0
        async with result.unwrap() as stream:
            async for chunk in stream:
                chunks += 1
                if chunk.choices:
                    content = chunk.choices[0].delta.content
                    if content:
                        chars += len(content)
                if chunks == hold_at:
                    await hold()
            usage = stream.usage
        return chunks, chars, usage.completion_tokens if usage else 0

    async def aclose(self) -> None:
        await self.core.close()


async def connect(url: str, variant: str, connections: int) -> AtomaClient:
    return AtomaClient(url, connections)
