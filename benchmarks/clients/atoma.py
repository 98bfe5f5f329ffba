"""This SDK: `chat_create` / `chat_create_stream` over one `AtomaCore`, default options; variant
"atoma-confidential": the same over `confidential_chat_create` / `confidential_chat_create_stream`
(a node lock once per core, then a fresh key per request and every event decrypted); variant
"atoma-resilient": plain calls on a core with a fallback and a circuit breaker configured that
never trigger (what choosing a target costs a call that needs none)."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from atoma_core import AtomaCore
from atoma_funcs import chat_create

from . import MESSAGES, TOKEN, no_hold


class AtomaClient:
    def __init__(
        self, url: str, connections: int, confidential: bool = False, resilient: bool = False
    ) -> None:
        extra: dict[str, Any] = {}
        if resilient:
            from atoma_core.config import Breaker, Fallback

            extra = {"fallbacks": [Fallback(model="bench:fallback")], "breaker": Breaker()}
        self.core = AtomaCore(bearer_auth=TOKEN, server_url=url, connection_limit=connections, **extra)
        self.confidential = confidential
        self.create = chat_create
        if confidential:
            from atoma_funcs import confidential_chat_create

            self.create = confidential_chat_create

    async def complete(self, model: str) -> tuple[int, int]:
        response = (await self.create(self.core, {"model": model, "messages": MESSAGES})).unwrap()
        content = response.choices[0].message.content
        return len(content or ""), response.usage.completion_tokens if response.usage else 0

    async def stream(
        self, model: str, hold: Callable[[], Awaitable[None]] = no_hold, hold_at: int = 0
    ) -> tuple[int, int, int]:
        from atoma_funcs import (  # on first use, as an app would
            chat_create_stream,
            confidential_chat_create_stream,
        )

        open_stream = confidential_chat_create_stream if self.confidential else chat_create_stream
        result = await open_stream(self.core, {"model": model, "messages": MESSAGES})
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
    return AtomaClient(
        url, connections, confidential=variant == "atoma-confidential", resilient=variant == "atoma-resilient"
    )
