"""The class-style faces of structured outputs and tools: `sdk.chat.parse`, `parse_stream` and
`run_tools` (and `sdk.confidential_chat.*`) on `AtomaSDK` and `AtomaSyncSDK`, raising the
typed errors instead of returning them."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import msgspec
import pytest

from atoma_core import errors
from atoma_core.models import ParsedChatCompletion, ToolRun
from atoma_core.testing import Sandbox, faults, sandbox_in_thread
from atoma_funcs import AtomaSDK, AtomaSyncSDK, ChatParseStream, tool

from .conftest import CHAT, TOKEN


class City(msgspec.Struct):
    name: str
    population: int


@tool
def double(x: int) -> int:
    """Double a number."""
    return 2 * x


MESSAGES = CHAT["messages"]


async def test_async_face(sandbox: Sandbox) -> None:
    async with AtomaSDK(TOKEN, sandbox.url) as sdk:
        parsed = await sdk.chat.parse(model="m", messages=MESSAGES, response_format=City)
        assert isinstance(parsed, ParsedChatCompletion)
        assert parsed.choices[0].message.parsed == City("hello there", 0)
        parsed = await sdk.chat.completions.parse(CHAT, City, mode="tool")
        assert parsed.choices[0].message.parsed == City("hello there", 0)
        async with await sdk.chat.parse_stream(CHAT, response_format=City) as stream:
            assert isinstance(stream, ChatParseStream)
            async for _ in stream:
                pass
            assert stream.snapshot == {"name": "hello there", "population": 0}
            assert (await stream.collect()).unwrap().choices[0].message.parsed == City("hello there", 0)
        run = await sdk.chat.run_tools(CHAT, tools=[double], max_rounds=3)
        assert isinstance(run, ToolRun) and run.calls[0].result == 0
        sandbox.script(faults.reply('{"name": "Oslo", "population": "many"}'))
        with pytest.raises(errors.OutputValidationError, match="population"):
            await sdk.chat.parse(CHAT, City)
        with pytest.raises(TypeError, match="response_format"):
            await sdk.chat.parse(CHAT)


async def test_async_confidential_face(sandbox: Sandbox) -> None:
    pytest.importorskip("cryptography")
    async with AtomaSDK(TOKEN, sandbox.url) as sdk:
        parsed = await sdk.confidential_chat.parse(CHAT, City)
        assert parsed.choices[0].message.parsed == City("hello there", 0)
        run = await sdk.confidential_chat.run_tools(CHAT, [double])
        assert run.rounds == 2
        async with await sdk.confidential_chat.parse_stream(CHAT, City) as stream:
            assert (await stream.collect()).unwrap().choices[0].message.parsed == City("hello there", 0)


@pytest.fixture
def threaded() -> Iterator[Sandbox]:
    with sandbox_in_thread(token=TOKEN) as sandbox:
        yield sandbox


def test_sync_face(threaded: Sandbox) -> None:
    with AtomaSyncSDK(TOKEN, threaded.url) as sdk:
        parsed = sdk.chat.parse(model="m", messages=MESSAGES, response_format=City, max_validation_retries=1)
        assert parsed.choices[0].message.parsed == City("hello there", 0)
        run = sdk.chat.run_tools(CHAT, [double])
        assert run.calls[0].arguments == {"x": 0}
        with sdk.chat.parse_stream(CHAT, City) as stream:
            chunks = list(stream)
            assert stream.snapshot == {"name": "hello there", "population": 0}
            assert chunks and stream.collect().unwrap().choices[0].message.parsed == City("hello there", 0)
        threaded.script(faults.reply(tool_calls=[{"name": "double", "arguments": {"x": 1}}], times=None))
        with pytest.raises(errors.ToolLoopError) as caught:
            sdk.chat.run_tools(CHAT, [double], max_rounds=2)
        assert caught.value.run.rounds == 2
    gc.collect()
