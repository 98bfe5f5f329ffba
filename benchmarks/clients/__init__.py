"""One module per client under test, each exposing `connect(url, variant, connections)`, an async
function returning an object with these coroutines:

    complete(model) -> (content_chars, completion_tokens)
    stream(model, hold=no_hold, hold_at=0) -> (chunks, content_chars, completion_tokens)
        every chunk is decoded and counted, the usage chunk included; `hold()` is awaited once,
        right after chunk number `hold_at` (1 is the first; 0: never)
    aclose()

Each module imports only its own library, and only the standard library is imported here.
"""

from __future__ import annotations

from typing import Any

TOKEN = "sk-bench-token"
MESSAGES: list[dict[str, Any]] = [
    {"role": "system", "content": "You are a concise assistant."},
    {"role": "user", "content": "Explain in one paragraph what verifiable inference means."},
]


async def no_hold() -> None:
    """The default `hold` of `stream`: never awaited, as `hold_at` defaults to 0."""


MODULES = {
    "bare": "benchmarks.clients.bare",
    "atoma": "benchmarks.clients.atoma",
    "atoma-confidential": "benchmarks.clients.atoma",
    "atoma-resilient": "benchmarks.clients.atoma",
    "openai": "benchmarks.clients.openai_sdk",
    "openai-aiohttp": "benchmarks.clients.openai_sdk",
    "atoma-sdk": "benchmarks.clients.atoma_sdk",
}

# What `python -c` imports for the cold-import figures (the first is the floor, "python -c pass").
COLD_IMPORTS = {
    "python": "pass",
    "bare": "import aiohttp, msgspec",
    "atoma": "from atoma_funcs import chat_create",
    "atoma-confidential": "from atoma_funcs import confidential_chat_create",
    "atoma-resilient": "from atoma_funcs import chat_create",
    "openai": "from openai import AsyncOpenAI",
    "openai-aiohttp": "from openai import AsyncOpenAI, DefaultAioHttpClient",
    "atoma-sdk": "from atoma_sdk import AtomaSDK",
}
