"""openai-python: `AsyncOpenAI` on its default httpx transport (variant "openai") or on
`DefaultAioHttpClient` (variant "openai-aiohttp"), default options otherwise."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from openai import AsyncOpenAI, DefaultAioHttpClient, DefaultAsyncHttpxClient

from . import MESSAGES, TOKEN, no_hold

_DEFAULT_CONNECTIONS = 1000  # openai's own pool limit; raised only if a workload needs more


class OpenAIClient:
    def __init__(self, url: str, variant: str, connections: int) -> None:
        kwargs: dict[str, Any] = {}
        if connections > _DEFAULT_CONNECTIONS:
            import httpx2

            kwargs["limits"] = httpx2.Limits(max_connections=connections, max_keepalive_connections=100)
        http_client = (DefaultAioHttpClient if variant == "openai-aiohttp" else DefaultAsyncHttpxClient)(
            **kwargs
        )
        self.client = AsyncOpenAI(api_key=TOKEN, base_url=url + "/v1", http_client=http_client)

    async def complete(self, model: str) -> tuple[int, int]:
        response = await self.client.chat.completions.create(model=model, messages=MESSAGES)  # type: ignore[arg-type]
        content = response.choices[0].message.content
        return len(content or ""), response.usage.completion_tokens if response.usage else 0

    async def stream(
        self, model: str, hold: Callable[[], Awaitable[None]] = no_hold, hold_at: int = 0
    ) -> tuple[int, int, int]:
        stream = await self.client.chat.completions.create(
            model=model,
            messages=MESSAGES,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = chars = tokens = 0
        async with stream:
            async for chunk in stream:
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
        await self.client.close()


async def connect(url: str, variant: str, connections: int) -> OpenAIClient:
    return OpenAIClient(url, variant, connections)
