"""Structured outputs and tools against a real model: Gemma 3 270M on llama-cpp-python's server
(`make e2e`), which turns a schema into a grammar, so even a small *base* model answers in shape.

llama-cpp-python (unlike llama.cpp's own `llama-server`) reads a schema only as
`response_format: {"type": "json_object", "schema": ...}` and ignores `json_schema`, so the
json_schema-mode tests send that form with `extra_body` (the SDK's strict schema in it). A forced
`tool_choice` is grammar-constrained to the tool's parameters, so "tool" mode and the tool loop
need nothing extra. The model's words are never asserted, only the shapes and types.
"""

from __future__ import annotations

import copy
import gc
import json
import os
from collections.abc import AsyncIterator
from typing import Any, Literal

import msgspec
import pytest

from atoma_core import AtomaCore, RequestOptions, Timeouts
from atoma_funcs import chat_parse, chat_parse_stream, chat_run_tools, tool
from atoma_funcs._schema import output_spec

BASE_URL = os.environ.get("E2E_BASE_URL", "")
MODEL = os.environ.get("E2E_MODEL", "gemma-3-270m")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not BASE_URL, reason="needs a running LLM server: run `make e2e`"),
]


class Mood(msgspec.Struct):
    """Only enums and booleans: a grammar keeps them short, so a base model finishes them."""

    mood: Literal["happy", "sad", "angry"]
    intense: bool


class Review(msgspec.Struct):
    sentiment: Literal["positive", "negative", "mixed"]
    recommend: bool
    stars: Literal["one", "two", "three", "four", "five"]


def chat(prompt: str, **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": prompt}], "temperature": 0, **extra}


def grammar_for(type_: Any) -> RequestOptions:
    """llama-cpp-python's spelling of a schema-constrained answer, with the SDK's strict schema."""
    schema = output_spec(type_).schema
    return RequestOptions(extra_body={"response_format": {"type": "json_object", "schema": schema}})


@pytest.fixture
async def core() -> AsyncIterator[AtomaCore]:
    sdk = AtomaCore(server_url=BASE_URL + "/v1", timeouts=Timeouts(connect=5, read=60, total=180))
    yield sdk
    await sdk.close()
    gc.collect()


async def test_literal_enum_struct_parsed_from_the_model(core: AtomaCore) -> None:
    request = chat("I just won the lottery! How do I feel?", max_tokens=48)
    response = (await chat_parse(core, request, Mood, options=grammar_for(Mood))).unwrap()
    parsed = response.choices[0].message.parsed
    assert isinstance(parsed, Mood) and parsed.mood in ("happy", "sad", "angry")
    assert json.loads(response.choices[0].message.content or "") == msgspec.to_builtins(parsed)
    assert response.usage is not None and response.usage.completion_tokens > 0


async def test_tool_mode_forced_call_is_parsed(core: AtomaCore) -> None:
    request = chat("The movie was long but the ending was great.", max_tokens=64)
    response = (await chat_parse(core, request, Review, mode="tool")).unwrap()
    message = response.choices[0].message
    assert isinstance(message.parsed, Review) and message.tool_calls
    assert message.tool_calls[0].function.name == "Review"


async def test_parse_stream_snapshots_grow(core: AtomaCore) -> None:
    request = chat("Review: terrible food, rude staff.", max_tokens=64)
    opened = await chat_parse_stream(core, request, Review, options=grammar_for(Review))
    snapshots = []
    async with opened.unwrap() as stream:
        async for _ in stream:
            snapshots.append(copy.deepcopy(stream.snapshot))
        result = await stream.collect()
    parsed = result.unwrap().choices[0].message.parsed
    assert isinstance(parsed, Review)
    assert snapshots[-1] == msgspec.to_builtins(parsed)
    sizes = [len(s) for s in snapshots if isinstance(s, dict)]
    assert sizes == sorted(sizes) and sizes[-1] == 3 and len(set(sizes)) >= 3  # field by field


async def test_tool_loop_with_a_forced_tool_choice(core: AtomaCore) -> None:
    seen: list[dict[str, Any]] = []

    @tool
    def set_mood(mood: Literal["happy", "sad", "angry"], intense: bool) -> str:
        """Record the user's mood.

        Args:
            mood: How the user feels.
            intense: Whether the feeling is strong.
        """
        seen.append({"mood": mood, "intense": intense})
        return "recorded"

    forced = {"type": "function", "function": {"name": "set_mood"}}
    request = chat("I am furious about the delay!", max_tokens=48, tool_choice=forced)
    run = (await chat_run_tools(core, request, [set_mood], max_rounds=3)).unwrap()
    assert run.rounds == 2 and len(run.calls) == 1 and run.calls[0].error is None
    assert seen == [run.calls[0].arguments] and run.calls[0].result == "recorded"
    assert [m["role"] for m in run.messages] == ["user", "assistant", "tool", "assistant"]
    assert run.response is not None and run.response.choices[0].message.tool_calls is None
    assert run.usage is not None and run.usage.completion_tokens > 0
