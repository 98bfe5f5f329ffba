"""A tool-calling loop: ask, run the tools the model calls, send their results back, repeat.

`resp.choices[0].message.to_param()` turns the assistant's answer (with its tool calls) into a
request message, so the history can be sent back as is. The same loop works streamed: a stream's
`collect()` gives the same response shape.

The sandbox answers a request with `tools` by calling the first tool with
`{"input": <last user text>}`, and answers a `tool` message with "Tool said: ...".

    python examples/tool_calling.py      # against a sandbox it starts
    ATOMASDK_SERVER_URL=https://api.atoma.network ATOMASDK_BEARER_AUTH=... python examples/tool_calling.py
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from typing import Any

from atoma_funcs import AtomaSDK

MODEL = "meta-llama/Llama-3.3-70B-Instruct"


def word_count(input: str) -> str:
    """The tool: count the words of a text."""
    return json.dumps({"words": len(input.split())})


TOOLS: dict[str, Callable[..., str]] = {"word_count": word_count}
TOOL_SPECS = [
    {
        "type": "function",
        "function": {
            "name": "word_count",
            "description": "Count the words in a text.",
            "parameters": {
                "type": "object",
                "properties": {"input": {"type": "string"}},
                "required": ["input"],
            },
        },
    }
]


async def run_tool_loop(sdk: AtomaSDK, prompt: str, *, stream: bool = False, max_rounds: int = 5) -> str:
    """Chat until the model answers without calling a tool; returns that answer."""
    messages: list[Any] = [{"role": "user", "content": prompt}]
    for _ in range(max_rounds):
        request = {"model": MODEL, "messages": messages, "tools": TOOL_SPECS}
        if stream:
            async with await sdk.chat.create_stream(request) as chunks:
                resp = (await chunks.collect()).unwrap()
        else:
            resp = await sdk.chat.create(request)
        message = resp.choices[0].message
        messages.append(message.to_param())  # the assistant turn, tool calls included
        if not message.tool_calls:
            return message.content or ""
        for call in message.tool_calls:
            arguments = json.loads(call.function.arguments or "{}")
            result = TOOLS[call.function.name](**arguments)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    raise RuntimeError(f"no final answer after {max_rounds} rounds")


async def main(server_url: str | None = None) -> dict[str, str]:
    """Run the loop twice, plain and streamed, on `server_url` or $ATOMASDK_SERVER_URL (else on a
    sandbox it starts)."""
    from contextlib import AsyncExitStack

    server_url = server_url or os.environ.get("ATOMASDK_SERVER_URL")
    async with AsyncExitStack() as stack:
        if server_url is None:  # no server given: start the sandbox
            from atoma_core.testing import Sandbox

            server_url = (await stack.enter_async_context(Sandbox())).url
        sdk = await stack.enter_async_context(AtomaSDK(server_url=server_url))
        prompt = "How many words are in this sentence?"
        return {
            "plain": await run_tool_loop(sdk, prompt),
            "streamed": await run_tool_loop(sdk, prompt, stream=True),
        }


if __name__ == "__main__":
    print(asyncio.run(main()))
