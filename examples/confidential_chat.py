"""Confidential compute: a chat whose prompt only a node in a TEE can read, streamed back encrypted.

The SDK locks a node for the model, seals the request to the node's X25519 key (a fresh key pair,
salt and nonce per attempt), and opens every answer event with the same key. What you get is the
ordinary ChatCompletionStream: chunks, usage, collect(). Needs `pip install "atoma-async[confidential]"`.

    python examples/confidential_chat.py          # against a sandbox it starts (it plays the node)
    ATOMASDK_SERVER_URL=https://api.atoma.network ATOMASDK_BEARER_AUTH=... \
        python examples/confidential_chat.py "my prompt"
"""

from __future__ import annotations

import asyncio
import os
import sys

from atoma_core import AtomaCore, Err
from atoma_funcs import confidential_chat_create_stream

MODEL = "meta-llama/Llama-3.3-70B-Instruct"


async def ask(core: AtomaCore, prompt: str) -> tuple[str, int]:
    """Stream one confidential answer to stdout; return the text and the total tokens."""
    request = {"model": MODEL, "messages": [{"role": "user", "content": prompt}]}
    opened = await confidential_chat_create_stream(core, request)
    if isinstance(opened, Err):
        raise opened.error
    async with opened.value as stream:
        async for chunk in stream:
            if chunk.choices:
                print(chunk.choices[0].delta.content or "", end="", flush=True)
    print()
    usage = stream.usage
    return stream.partial.choices[0].message.content or "", usage.total_tokens if usage else 0


async def main(server_url: str | None = None, prompt: str = "Summarise our merger plans.") -> tuple[str, int]:
    server_url = server_url or os.environ.get("ATOMASDK_SERVER_URL")
    if server_url is None:  # no server given: start the sandbox, which plays a confidential node
        from atoma_core.testing import Sandbox

        async with Sandbox() as sandbox, AtomaCore(server_url=sandbox.url) as core:
            return await ask(core, prompt)
    async with AtomaCore(server_url=server_url) as core:
        return await ask(core, prompt)


if __name__ == "__main__":
    text, tokens = asyncio.run(main(prompt=" ".join(sys.argv[1:]) or "Summarise our merger plans."))
    print(f"{tokens} tokens", file=sys.stderr)
