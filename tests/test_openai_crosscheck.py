"""Cross-check: the SDK's accumulated stream equals what openai-python builds from the same bytes.

A recording proxy (`Tee`) sits between the SDK and a server (llmock, or the project's Sandbox) and
keeps the exact response bytes. The SDK's `collect()` is then compared with openai-python's
`ChatCompletionStreamState` (openai.lib.streaming.chat) fed by the official `AsyncOpenAI` client,
which reads those very bytes back from the proxy's replay route: openai's own SSE decoder, chunk
models and accumulation, no code of ours. Compared: id, model, created, every choice's role,
content, refusal, finish_reason and tool calls (id, type, name, arguments), and usage; and, chunk
by chunk, the deltas both clients yield.
"""

from __future__ import annotations

import gc
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import httpx
import openai
import pytest
from aiohttp import web
from openai.lib.streaming.chat import ChatCompletionStreamState

from atoma_core import AtomaCore, BackoffStrategy, RetryConfig
from atoma_core.models import ChatCompletionChunk, ChatCompletionResponse
from atoma_core.testing import Sandbox
from atoma_funcs import chat_create_stream
from tests.test_llmock import WEATHER_TOOL, running_llmock

TOOLS = [WEATHER_TOOL]


class Tee:
    """A pass-through proxy that records each response body; `POST /replay/...` plays the last one."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.bodies: list[bytes] = []
        self.content_types: list[str] = []
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.url = ""

    async def __aenter__(self) -> Tee:
        app = web.Application()
        app.router.add_post("/replay/{tail:.*}", self._replay)
        app.router.add_post("/{tail:.*}", self._forward)
        self._session = aiohttp.ClientSession(auto_decompress=False)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None and self._session is not None
        await self._runner.cleanup()
        await self._session.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        keep = ("Content-Type", "Authorization", "Accept", "User-Agent")
        headers = {name: request.headers[name] for name in keep if name in request.headers}
        body = await request.read()
        async with self._session.post(
            self.upstream + request.path_qs, data=body, headers=headers
        ) as upstream:
            response = web.StreamResponse(status=upstream.status)
            response.content_type = upstream.content_type
            await response.prepare(request)
            raw = bytearray()
            async for piece in upstream.content.iter_any():
                raw += piece
                await response.write(piece)
        self.bodies.append(bytes(raw))
        self.content_types.append(upstream.headers.get("Content-Type", ""))
        await response.write_eof()
        return response

    async def _replay(self, request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=self.bodies[-1], headers={"Content-Type": self.content_types[-1]})


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def llmock_root() -> Iterator[str]:
    with running_llmock() as url:
        yield url


@pytest.fixture
async def llmock_tee(llmock_root: str) -> AsyncIterator[Tee]:
    async with aiohttp.ClientSession() as session, session.post(llmock_root + "/_llmock/reset") as r:
        assert r.status == 200
    async with Tee(llmock_root) as tee:
        yield tee


@pytest.fixture
async def sandbox_tee() -> AsyncIterator[Tee]:
    # chunk_delay: the sandbox sends `: keep-alive` comments between chunks, like the proxy.
    async with Sandbox(chunk_delay=0.02, keepalive_interval=0.005) as sandbox, Tee(sandbox.url) as tee:
        yield tee


async def script(root: str, *behaviors: dict[str, Any]) -> None:
    body = {"behaviors": list(behaviors)}
    async with aiohttp.ClientSession() as session, session.post(root + "/_llmock/scenario", json=body) as r:
        assert r.status == 201, await r.text()


# ------------------------------------------------------------------ the two clients


async def via_sdk(
    tee: Tee, request: dict[str, Any]
) -> tuple[ChatCompletionResponse, list[ChatCompletionChunk]]:
    core = AtomaCore(
        "sk-cross", tee.url, retry_config=RetryConfig(backoff=BackoffStrategy(10, 50, 2.0, 5_000))
    )
    try:
        async with (await chat_create_stream(core, request)).unwrap() as stream:
            chunks = [chunk async for chunk in stream]
            done = (await stream.collect()).unwrap()
    finally:
        await core.close()
        gc.collect()
    return done, chunks


async def via_openai(tee: Tee, request: dict[str, Any]) -> tuple[Any, list[Any]]:
    """openai-python over the recorded bytes: AsyncOpenAI streaming + ChatCompletionStreamState."""
    async with httpx.AsyncClient(trust_env=False) as http:
        client = openai.AsyncOpenAI(
            api_key="sk-cross", base_url=tee.url + "/replay/v1", http_client=http, max_retries=0
        )
        state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
        chunks = []
        stream = await client.chat.completions.create(**request, stream=True)
        async with stream:
            async for chunk in stream:
                state.handle_chunk(chunk)
                chunks.append(chunk)
    try:
        final = state.get_final_completion()
    except openai.LengthFinishReasonError as exc:  # raised for finish_reason "length"; same snapshot
        final = exc.completion
    return final, chunks


# ------------------------------------------------------------------ normal forms


def _usage(usage: Any) -> dict[str, Any] | None:
    if usage is None:
        return None
    details = usage.prompt_tokens_details
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "cached_tokens": None if details is None else details.cached_tokens,
    }


def _calls(calls: Any) -> list[tuple[Any, ...]] | None:
    if not calls:
        return None
    return [(c.id, c.type, c.function.name, c.function.arguments) for c in calls]


def summary(completion: Any) -> dict[str, Any]:
    """The same view of an SDK ChatCompletionResponse and an openai ParsedChatCompletion."""
    return {
        "id": completion.id,
        "model": completion.model,
        "created": completion.created,
        "object": completion.object,
        "system_fingerprint": completion.system_fingerprint,
        "choices": [
            {
                "index": c.index,
                "finish_reason": c.finish_reason,
                "role": c.message.role,
                "content": c.message.content,
                "refusal": c.message.refusal,
                "tool_calls": _calls(c.message.tool_calls),
            }
            for c in completion.choices
        ],
        "usage": _usage(completion.usage),
    }


def chunk_summary(chunk: Any) -> dict[str, Any]:
    return {
        "id": chunk.id,
        "usage": _usage(chunk.usage),
        "choices": [
            {
                "index": c.index,
                "finish_reason": c.finish_reason,
                "role": c.delta.role,
                "content": c.delta.content,
                "tool_calls": [
                    (
                        d.index,
                        d.id,
                        d.type,
                        None if d.function is None else d.function.name,
                        None if d.function is None else d.function.arguments,
                    )
                    for d in c.delta.tool_calls or ()
                ],
            }
            for c in chunk.choices
        ],
    }


def reconcile(ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    """The one deliberate difference, made equal and reported: on a pure tool-call answer whose
    role delta carried `content: ""`, openai keeps "" while the SDK gives None, as a non-streamed
    response has it (atoma_core/_accumulate.py)."""
    notes = []
    for mine, other in zip(ours["choices"], theirs["choices"]):
        if mine["tool_calls"] and mine["content"] is None and other["content"] == "":
            other["content"] = None
            notes.append(f"choice {mine['index']}: tool-call-only content None (openai: '')")
    return notes


async def crosscheck(
    tee: Tee, request: dict[str, Any], divergences: list[str] | None = None
) -> dict[str, Any]:
    """Both clients on one recorded stream; equal, except for the `divergences` expected."""
    ours, our_chunks = await via_sdk(tee, request)
    theirs, their_chunks = await via_openai(tee, request)
    assert len(tee.bodies) == 1  # one upstream request: both clients read the same bytes
    assert [chunk_summary(c) for c in our_chunks] == [chunk_summary(c) for c in their_chunks]
    mine, other = summary(ours), summary(theirs)
    assert reconcile(mine, other) == (divergences or [])
    assert mine == other
    return mine


# ===================================================================== llmock


async def test_llmock_plain_text_with_usage(llmock_tee: Tee) -> None:
    seen = await crosscheck(
        llmock_tee, {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi there"}]}
    )
    (choice,) = seen["choices"]
    assert choice["content"] and choice["finish_reason"] == "stop" and choice["tool_calls"] is None
    assert seen["usage"]["completion_tokens"] > 0
    assert llmock_tee.bodies[0].rstrip().endswith(b"data: [DONE]")


async def test_llmock_two_choices(llmock_tee: Tee) -> None:
    seen = await crosscheck(
        llmock_tee, {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Count"}], "n": 2}
    )
    assert [c["index"] for c in seen["choices"]] == [0, 1]


async def test_llmock_scripted_text_and_two_tool_calls(llmock_tee: Tee, llmock_root: str) -> None:
    calls = [
        {"name": "get_weather", "arguments": {"city": "Paris", "unit": "c", "note": "x" * 30}},
        {"name": "get_time", "arguments": {"tz": "Europe/Paris"}},
    ]
    await script(llmock_root, {"type": "reply", "text": "Let me check.", "tool_calls": calls})
    request = {"model": "gpt-4o", "messages": [{"role": "user", "content": "weather?"}], "tools": TOOLS}
    seen = await crosscheck(llmock_tee, request)
    (choice,) = seen["choices"]
    assert choice["finish_reason"] == "tool_calls" and choice["content"] == "Let me check."
    assert [c[2] for c in choice["tool_calls"]] == ["get_weather", "get_time"]


async def test_llmock_tool_call_only(llmock_tee: Tee) -> None:
    """llmock's own tool call (auto mode): content null in the role delta, arguments in pieces."""
    request = {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "weather in Paris?"}],
        "tools": TOOLS,
    }
    seen = await crosscheck(llmock_tee, request)
    (choice,) = seen["choices"]
    assert choice["content"] is None
    ((call_id, kind, name, arguments),) = choice["tool_calls"]
    assert call_id.startswith("call_") and kind == "function" and name == "get_weather"
    assert arguments == '{"city": "mock-city", "unit": "c"}'


async def test_llmock_length_and_unicode(llmock_tee: Tee, llmock_root: str) -> None:
    text = "Ünïcödé façade — 日本語のテキスト 🚀🚀 and more"
    await script(llmock_root, {"type": "reply", "text": text, "finish_reason": "length"})
    seen = await crosscheck(llmock_tee, {"model": "gpt-4o", "messages": [{"role": "user", "content": "go"}]})
    assert seen["choices"][0]["content"] == text
    assert seen["choices"][0]["finish_reason"] == "length"


# ===================================================================== sandbox


async def test_sandbox_plain_text(sandbox_tee: Tee) -> None:
    """Atoma's framing: keep-alive comments, a usage chunk with prompt_tokens_details, no [DONE],
    and `response_hash` / `signature` / `stop_reason` on every chunk."""
    request = {
        "model": "sandbox-model",
        "messages": [{"role": "user", "content": "hello there, how are you"}],
    }
    seen = await crosscheck(sandbox_tee, request)
    body = sandbox_tee.bodies[0]
    assert b": keep-alive" in body and b"[DONE]" not in body and b'"signature"' in body
    assert seen["choices"][0]["content"] == "You said: hello there, how are you"
    assert seen["usage"]["cached_tokens"] == 0


async def test_sandbox_tool_call(sandbox_tee: Tee) -> None:
    request = {
        "model": "sandbox-model",
        "messages": [{"role": "user", "content": "weather?"}],
        "tools": TOOLS,
    }
    seen = await crosscheck(sandbox_tee, request, ["choice 0: tool-call-only content None (openai: '')"])
    (choice,) = seen["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["content"] is None
    assert b'"delta":{"role":"assistant","content":""}' in sandbox_tee.bodies[0]
    ((_, _, name, arguments),) = choice["tool_calls"]
    # the sandbox fills the tool's parameters schema (city: string, unit: enum c/f)
    assert name == "get_weather" and arguments == '{"city": "weather?", "unit": "c"}'


async def test_sandbox_max_tokens_length(sandbox_tee: Tee) -> None:
    request = {
        "model": "sandbox-model",
        "messages": [{"role": "user", "content": "one two three four five six"}],
        "max_tokens": 3,
    }
    seen = await crosscheck(sandbox_tee, request)
    assert seen["choices"][0]["finish_reason"] == "length"
    assert seen["usage"]["completion_tokens"] == 3


@pytest.mark.parametrize("framing", [{"line_ending": "\r\n"}, {"send_done": True}, {"line_ending": "\r"}])
async def test_sandbox_framings(framing: dict[str, Any]) -> None:
    """CRLF / CR line ends and a trailing [DONE]: both decoders agree."""
    async with Sandbox(**framing) as sandbox, Tee(sandbox.url) as tee:
        await crosscheck(tee, {"model": "m", "messages": [{"role": "user", "content": "framing check"}]})
