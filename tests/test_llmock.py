"""The SDK against llmock (PyPI `llmock`, dev extra): a third-party OpenAI-compatible mock server.

`llmock serve` runs as a real subprocess on a free loopback port (started once per module, stopped
by its PID); its queue (`POST /_llmock/scenario`) scripts replies and faults, its journal
(`/_llmock/requests`) shows what reached it and its `/_llmock/verdict` judges our retries. The
queue and journal are reset before each test (`POST /_llmock/reset`).

Outcomes asserted here are the SDK's precise ones: the error class, `attempts`, timeout phase, and
what `partial` holds when a stream breaks.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Literal

import aiohttp
import msgspec
import pytest

from atoma_core import (
    AtomaCore,
    BackoffStrategy,
    Err,
    Ok,
    RequestOptions,
    Result,
    RetryConfig,
    Timeouts,
    errors,
)
from atoma_core.models import ChatCompletionResponse
from atoma_funcs import chat_create, chat_create_stream, chat_parse, chat_parse_stream, chat_run_tools, tool

from .conftest import stop_process

LLMOCK = Path(sys.executable).with_name("llmock")
FAST_RETRIES = RetryConfig(backoff=BackoffStrategy(10, 50, 2.0, 5_000))
CONTEXT_WINDOW = 3000  # llmock's estimate is len(text) // 4 per message
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city", "unit"],
        },
    },
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, timeout: float = 1.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return bytes(response.read())


def _post(url: str, body: dict[str, Any] | None = None) -> bytes:
    data = json.dumps(body or {}).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return bytes(response.read())


@contextlib.contextmanager
def running_llmock(*flags: str, start_timeout: float = 30.0) -> Iterator[str]:
    """Start `llmock serve` (the venv's executable) on a free port; yield its root URL; stop it by
    its PID (SIGTERM, then SIGKILL if it lingers)."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [str(LLMOCK), "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen([*command, *flags], stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + start_timeout
            while True:
                try:
                    health = json.loads(_get(url + "/health"))
                    assert health["status"] == "ok", health
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        pytest.fail(f"llmock did not start (rc={proc.poll()}):\n{log.read().decode()}")
                    time.sleep(0.05)
            yield url
        finally:
            stop_process(proc)


@pytest.fixture(scope="module")
def llmock_url() -> Iterator[str]:
    with running_llmock("--context-window", str(CONTEXT_WINDOW)) as url:
        yield url


@pytest.fixture(autouse=True)
def _fresh_llmock(llmock_url: str) -> None:
    """Empty queue and journal: the verdict groups identical bodies across tests otherwise."""
    assert json.loads(_post(llmock_url + "/_llmock/reset")) == {"reset": True}


@pytest.fixture
async def sdk(llmock_url: str) -> AsyncIterator[AtomaCore]:
    core = AtomaCore("sk-llmock", llmock_url + "/v1", retry_config=FAST_RETRIES)
    yield core
    await core.close()
    gc.collect()


@pytest.fixture
async def control(llmock_url: str) -> AsyncIterator[Control]:
    async with aiohttp.ClientSession(llmock_url) as session:
        yield Control(session)


class Control:
    """llmock's admin API."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def script(self, *behaviors: dict[str, Any]) -> None:
        async with self.session.post("/_llmock/scenario", json={"behaviors": list(behaviors)}) as r:
            assert r.status == 201, await r.text()

    async def requests(self) -> list[dict[str, Any]]:
        async with self.session.get("/_llmock/requests") as r:
            return list((await r.json())["requests"])

    async def verdict(self) -> dict[str, Any]:
        async with self.session.get("/_llmock/verdict") as r:
            return dict(await r.json())


def chat(text: str = "Hi", **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": text}], **extra}


def codes(verdict: dict[str, Any]) -> set[str]:
    return {finding["code"] for finding in verdict["findings"]}


async def stream_to_end(
    core: AtomaCore, request: dict[str, Any], options: RequestOptions | None = None
) -> Result[ChatCompletionResponse, errors.AtomaError]:
    """Open a stream and collect it: the outcome of the whole call, whether it failed while
    opening (status, retried failures, anything before the first event) or while reading."""
    opened = await chat_create_stream(core, request, options)
    if isinstance(opened, Err):
        return opened
    async with opened.value as stream:
        return await stream.collect()


# ================================================================= happy paths


async def test_non_stream(sdk: AtomaCore, control: Control) -> None:
    result = await chat_create(sdk, chat("Hi there"))
    assert isinstance(result, Ok), result
    response = result.value
    assert response.id.startswith("chatcmpl-")
    assert response.object == "chat.completion"
    assert response.model == "gpt-4o"
    assert response.created > 0
    (choice,) = response.choices
    assert choice.index == 0
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str) and choice.message.content
    assert choice.message.tool_calls is None
    usage = response.usage
    assert usage is not None and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert response.meta is not None and response.meta.attempts == 1
    (record,) = await control.requests()
    assert record["status"] == 200 and record["stream"] is False
    assert record["body"] == {**chat("Hi there"), "stream": False}


async def test_non_stream_scripted_reply(sdk: AtomaCore, control: Control) -> None:
    await control.script({"type": "reply", "text": "Scripted answer, exactly.", "finish_reason": "length"})
    response = (await chat_create(sdk, chat())).unwrap()
    assert response.choices[0].message.content == "Scripted answer, exactly."
    assert response.choices[0].finish_reason == "length"


async def test_stream_with_usage(sdk: AtomaCore, control: Control) -> None:
    result = await chat_create_stream(sdk, chat("Tell me something"))
    assert isinstance(result, Ok), result
    chunks = []
    async with result.value as stream:
        async for chunk in stream:
            chunks.append(chunk)
        assert stream.closed
        usage, metrics = stream.usage, stream.metrics
        done = await stream.collect()
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None  # the usage chunk, before [DONE]
    assert all(c.usage is None for c in chunks[:-1])
    assert usage == chunks[-1].usage and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert metrics.chunks == len(chunks) and metrics.attempts == 1
    assert metrics.completion_tokens == usage.completion_tokens
    assert metrics.time_to_first_token is not None and metrics.tokens_per_second is not None
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert isinstance(done, Ok), done
    assert done.value.choices[0].message.content == text
    assert done.value.choices[0].finish_reason == "stop"
    assert done.value.usage == usage
    assert done.value.id == chunks[0].id
    (record,) = await control.requests()
    assert record["completed"] is True and record["fault"] is None
    assert record["body"]["stream"] is True
    assert record["body"]["stream_options"] == {"include_usage": True}
    # llmock's reply is deterministic per (model, prompt): the non-stream answer is the same text.
    same = (await chat_create(sdk, chat("Tell me something"))).unwrap()
    assert same.choices[0].message.content == text
    assert same.usage == usage


async def test_stream_two_choices(sdk: AtomaCore) -> None:
    async with (await chat_create_stream(sdk, chat(n=2))).unwrap() as stream:
        done = (await stream.collect()).unwrap()
    assert [c.index for c in done.choices] == [0, 1]
    assert all(c.finish_reason == "stop" for c in done.choices)
    assert done.choices[0].message.content == done.choices[1].message.content != ""


async def test_json_schema_response_format(sdk: AtomaCore) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}, "n": {"type": "integer"}},
        "required": ["answer", "n"],
    }
    request = chat(response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}})
    content = (await chat_create(sdk, request)).unwrap().choices[0].message.content
    assert content is not None
    parsed = json.loads(content)
    assert isinstance(parsed["answer"], str) and isinstance(parsed["n"], int)


# =================================================================== tool calls


async def test_tool_call_non_stream_and_round_trip(sdk: AtomaCore, control: Control) -> None:
    request = chat("What is the weather in Paris?", tools=[WEATHER_TOOL])
    response = (await chat_create(sdk, request)).unwrap()
    (choice,) = response.choices
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert call.id.startswith("call_") and call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "mock-city", "unit": "c"}

    # Send the call back with its result: llmock answers in text after a tool message.
    follow_up = {
        **request,
        "messages": [
            *request["messages"],
            choice.message.to_param(),
            {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 21}'},
        ],
    }
    answer = (await chat_create(sdk, follow_up)).unwrap()
    assert answer.choices[0].finish_reason == "stop"
    assert answer.choices[0].message.content and answer.choices[0].message.tool_calls is None
    sent = (await control.requests())[-1]["body"]["messages"][1]
    assert sent["role"] == "assistant" and sent["content"] == ""  # null content filled for the proxy
    assert sent["tool_calls"] == [
        {
            "id": call.id,
            "type": "function",
            "function": {"name": "get_weather", "arguments": call.function.arguments},
        }
    ]


async def test_tool_calls_stream_merge_into_valid_json(sdk: AtomaCore, control: Control) -> None:
    """Two calls, arguments streamed in 12-character fragments, after some text."""
    calls = [
        {"name": "get_weather", "arguments": {"city": "Paris", "unit": "c", "note": "a longer value here"}},
        {"name": "get_time", "arguments": {"tz": "Europe/Paris"}},
    ]
    await control.script({"type": "reply", "text": "Let me check.", "tool_calls": calls})
    async with (
        await chat_create_stream(sdk, chat("weather and time", tools=[WEATHER_TOOL]))
    ).unwrap() as stream:
        fragments = 0
        async for chunk in stream:
            for choice in chunk.choices:
                fragments += sum(1 for d in choice.delta.tool_calls or () if d.id is None)
        done = (await stream.collect()).unwrap()
    assert fragments > 2  # the arguments really came in pieces
    (choice,) = done.choices
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me check."
    tool_calls = choice.message.tool_calls or []
    assert [c.function.name for c in tool_calls] == ["get_weather", "get_time"]
    assert [json.loads(c.function.arguments) for c in tool_calls] == [c["arguments"] for c in calls]
    assert all(c.id.startswith("call_") and c.type == "function" for c in tool_calls)
    assert tool_calls[0].id != tool_calls[1].id


@pytest.mark.parametrize("stream", [False, True])
async def test_broken_tool_call_arguments_are_passed_through(
    sdk: AtomaCore, control: Control, stream: bool
) -> None:
    """llmock's `malformed_arguments` fault: the SDK does not validate arguments (the spec warns
    they may be invalid JSON); it hands them over as sent."""
    await control.script({"type": "tool_fault", "kind": "malformed_arguments"})
    request = chat("weather in Paris?", tools=[WEATHER_TOOL])
    if stream:
        async with (await chat_create_stream(sdk, request)).unwrap() as s:
            response = (await s.collect()).unwrap()
    else:
        response = (await chat_create(sdk, request)).unwrap()
    (call,) = response.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"
    assert call.function.arguments.startswith('{"city": "')  # cut short by llmock
    with pytest.raises(json.JSONDecodeError):
        json.loads(call.function.arguments)


async def test_unknown_tool_name_is_passed_through(sdk: AtomaCore, control: Control) -> None:
    await control.script({"type": "tool_fault", "kind": "unknown_tool"})
    response = (await chat_create(sdk, chat("weather?", tools=[WEATHER_TOOL]))).unwrap()
    (call,) = response.choices[0].message.tool_calls or []
    assert call.function.name == "llmock_unknown_tool"


# ============================================================ retries and errors


async def test_429_with_retry_after_then_success(sdk: AtomaCore, control: Control) -> None:
    await control.script({"type": "fail", "status": 429, "retry_after": 0.2, "times": 2})
    started = time.monotonic()
    result = await chat_create(sdk, chat())
    elapsed = time.monotonic() - started
    assert isinstance(result, Ok), result
    assert result.value.meta is not None and result.value.meta.attempts == 3
    assert elapsed >= 0.4  # honoured `retry-after-ms: 200` twice (not the backoff's <= 50 ms)
    records = await control.requests()
    assert [r["status"] for r in records] == [429, 429, 200]
    assert [r["retry_after"] for r in records[:2]] == [0.2, 0.2]
    verdict = await control.verdict()
    assert verdict["passed"] is True
    assert (verdict["calls"], verdict["attempts"], verdict["faults_injected"]) == (1, 3, 2)
    assert (verdict["errors"], verdict["warnings"], verdict["findings"]) == (0, 0, [])


async def test_429_then_stream(sdk: AtomaCore, control: Control) -> None:
    """A stream is retried like any call until its headers arrive."""
    await control.script({"type": "fail", "status": 429, "retry_after": 0.05})
    async with (await chat_create_stream(sdk, chat())).unwrap() as stream:
        assert stream.attempts == 2
        done = (await stream.collect()).unwrap()
    assert done.meta is not None and done.meta.attempts == 2
    assert done.choices[0].finish_reason == "stop"
    assert (await control.verdict())["findings"] == []


async def test_5xx_then_success(sdk: AtomaCore, control: Control) -> None:
    await control.script(
        {"type": "fail", "status": 500},
        {
            "type": "fail",
            "status": 503,
            "retry_after": 0,
            "message": "down for maintenance",
            "code": "overloaded",
        },
    )
    result = await chat_create(sdk, chat())
    assert isinstance(result, Ok), result
    assert result.value.meta is not None and result.value.meta.attempts == 3
    assert [r["status"] for r in await control.requests()] == [500, 503, 200]
    verdict = await control.verdict()
    assert verdict["passed"] is True and verdict["errors"] == 0 and verdict["attempts"] == 3
    # The only possible remark: this test's backoff (10-50 ms, jittered) is under llmock's 50 ms bar.
    assert codes(verdict) <= {"no_backoff"}


async def test_5xx_outage_gives_up_after_the_retries(sdk: AtomaCore, control: Control) -> None:
    await control.script({"type": "fail", "status": 503, "retry_after": 0, "times": None})
    result = await chat_create(sdk, chat())
    assert isinstance(result, Err)
    error = result.error
    assert isinstance(error, errors.InternalServerError)
    assert error.status_code == 503 and error.attempts == 3
    assert error.type == "server_error"
    assert len(await control.requests()) == 3
    verdict = await control.verdict()
    assert verdict["passed"] is True and verdict["errors"] == 0


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, errors.BadRequestError),
        (401, errors.AuthenticationError),
        (403, errors.PermissionDeniedError),
        (404, errors.NotFoundError),
        (422, errors.UnprocessableEntityError),
    ],
)
async def test_4xx_is_not_retried(sdk: AtomaCore, control: Control, status: int, cls: type) -> None:
    await control.script(
        {"type": "fail", "status": status, "message": "nope", "code": "scripted", "times": 3}
    )
    result = await chat_create(sdk, chat())
    assert isinstance(result, Err)
    error = result.error
    assert type(error) is cls
    assert (error.status_code, error.code, error.message, error.attempts) == (status, "scripted", "nope", 1)
    assert len(await control.requests()) == 1
    verdict = await control.verdict()
    assert "retried_non_retryable" not in codes(verdict) and verdict["passed"] is True


async def test_real_validation_error_is_422(sdk: AtomaCore) -> None:
    """Not scripted: llmock's own request validation (extra_body breaks `messages` on purpose)."""
    result = await chat_create(sdk, chat(), RequestOptions(extra_body={"messages": "not a list"}))
    assert isinstance(result, Err)
    assert isinstance(result.error, errors.UnprocessableEntityError)
    assert result.error.attempts == 1 and "messages" in result.error.message


async def test_retry_after_longer_than_allowed_fails_fast(sdk: AtomaCore, control: Control) -> None:
    """Retry-After 120 s > max_retry_after_ms (60 s): the error comes back at once."""
    await control.script({"type": "fail", "status": 429, "retry_after": 120})
    started = time.monotonic()
    result = await chat_create(sdk, chat())
    assert time.monotonic() - started < 1.0
    assert isinstance(result, Err) and isinstance(result.error, errors.RateLimitError)
    assert result.error.attempts == 1 and result.error.code == "rate_limit_exceeded"
    verdict = await control.verdict()
    assert verdict["passed"] is True and codes(verdict) == {"gave_up"}


async def test_forced_status_outside_the_retry_list(sdk: AtomaCore, control: Control) -> None:
    """llmock's per-request header; 529 (overloaded) is a 5xx but not in the default status_codes."""
    options = RequestOptions(headers={"x-llmock-force-status": "529"})
    result = await chat_create(sdk, chat(), options)
    assert isinstance(result, Err) and isinstance(result.error, errors.InternalServerError)
    assert result.error.status_code == 529 and result.error.attempts == 1
    (record,) = await control.requests()
    assert record["fault"] == "forced:529"


@pytest.mark.parametrize("stream", [False, True])
async def test_context_window_exceeded(sdk: AtomaCore, stream: bool) -> None:
    """Started with --context-window: an over-long prompt is a 400 before any stream begins."""
    request = chat("word " * (CONTEXT_WINDOW * 2))
    result = await (chat_create_stream if stream else chat_create)(sdk, request)
    assert isinstance(result, Err)
    error = result.error
    assert isinstance(error, errors.BadRequestError)
    assert error.code == "context_length_exceeded" and error.attempts == 1
    assert f"maximum context length is {CONTEXT_WINDOW} tokens" in error.message


# ================================================================ stream faults


async def test_disconnect_mid_stream(sdk: AtomaCore, control: Control) -> None:
    await control.script({"type": "stream_fault", "kind": "disconnect", "after_chunks": 3})
    received = []
    async with (await chat_create_stream(sdk, chat())).unwrap() as stream:
        with pytest.raises(errors.StreamInterruptedError) as caught:
            async for chunk in stream:
                received.append(chunk)
        assert stream.closed
    error = caught.value
    assert len(received) == 3  # role chunk + two pieces of text, then the connection dropped
    text = "".join(c.choices[0].delta.content or "" for c in received)
    assert text and error.partial is not None
    assert error.partial.choices[0].message.content == text
    assert error.partial.choices[0].finish_reason is None
    assert error.attempts == 1
    assert "not completed" in error.message or "payload" in error.message.lower()
    (record,) = await control.requests()
    assert record["fault"] == "stream:disconnect@3" and record["completed"] is False
    # The SDK never retries a stream that has started (it may have been shown); llmock notes that.
    assert codes(await control.verdict()) == {"gave_up"}


async def test_truncated_stream_then_app_retry(sdk: AtomaCore, control: Control) -> None:
    """A clean end of body before any finish_reason: StreamTruncatedError, with the text so far."""
    await control.script({"type": "stream_fault", "kind": "truncate", "after_chunks": 3})
    async with (await chat_create_stream(sdk, chat())).unwrap() as stream:
        result = await stream.collect()
    assert isinstance(result, Err)
    error = result.error
    assert isinstance(error, errors.StreamTruncatedError)
    assert error.attempts == 1
    assert error.partial is not None
    assert error.partial.choices[0].finish_reason is None
    assert error.partial.choices[0].message.content  # two pieces of text arrived
    # llmock cannot see that the app got an error, so it flags the truncation as accepted...
    verdict = await control.verdict()
    assert verdict["passed"] is False and codes(verdict) == {"truncated_stream_accepted"}
    # ...until the app does what the error is for: run the call again.
    async with (await chat_create_stream(sdk, chat())).unwrap() as stream:
        retried = (await stream.collect()).unwrap()
    assert retried.choices[0].finish_reason == "stop"
    assert retried.choices[0].message.content.startswith(error.partial.choices[0].message.content)
    verdict = await control.verdict()
    assert verdict["passed"] is True and verdict["attempts"] == 2 and verdict["findings"] == []


async def _events_of_a_stream(sdk: AtomaCore) -> int:
    """How many SSE events llmock sends for `chat()` (role, text pieces, finish, usage, [DONE])."""
    async with (await chat_create_stream(sdk, chat())).unwrap() as stream:
        chunks = [c async for c in stream]
    return len(chunks) + 1


async def test_truncated_after_finish_reason_is_accepted(sdk: AtomaCore, control: Control) -> None:
    """EOF after the finish chunk (no usage chunk, no [DONE]) is how Atoma's proxy ends every
    stream (it never sends [DONE]): a complete answer, and `usage` is simply None."""
    events = await _events_of_a_stream(sdk)
    await control.script({"type": "stream_fault", "kind": "truncate", "after_chunks": events - 2})
    async with (await chat_create_stream(sdk, chat())).unwrap() as stream:
        done = await stream.collect()
        assert stream.usage is None and stream.metrics.tokens_per_second is None
    assert isinstance(done, Ok), done
    assert done.value.choices[0].finish_reason == "stop"
    assert done.value.usage is None


async def test_truncated_before_done_is_accepted(sdk: AtomaCore, control: Control) -> None:
    events = await _events_of_a_stream(sdk)
    await control.script({"type": "stream_fault", "kind": "truncate", "after_chunks": events - 1})
    async with (await chat_create_stream(sdk, chat())).unwrap() as stream:
        done = (await stream.collect()).unwrap()
        assert stream.usage is not None
    assert done.choices[0].finish_reason == "stop" and done.usage == stream.usage


async def test_malformed_chunk(sdk: AtomaCore, control: Control) -> None:
    """Event #2 is replaced by the first half of its JSON: the SDK stops there with
    StreamInterruptedError (not a silent skip, which would lose that text), the partial holding
    the text before it; the rest of the stream is not read."""
    await control.script({"type": "stream_fault", "kind": "malformed", "after_chunks": 2})
    received = []
    async with (await chat_create_stream(sdk, chat())).unwrap() as stream:
        with pytest.raises(errors.StreamInterruptedError) as caught:
            async for chunk in stream:
                received.append(chunk)
        assert stream.closed
    error = caught.value
    assert not isinstance(error, errors.ResponseValidationError)
    assert error.message.startswith('malformed event data: b\'{"id":"chatcmpl-')
    assert len(received) == 2
    assert error.partial is not None
    assert error.partial.choices[0].message.content == received[1].choices[0].delta.content
    assert error.partial.choices[0].finish_reason is None and error.attempts == 1
    (record,) = await control.requests()
    assert record["fault"] == "stream:malformed@2"
    # llmock wrote the whole stream before the SDK parsed it, so it cannot tell we stopped reading.
    verdict = await control.verdict()
    assert verdict["errors"] == 0 and codes(verdict) <= {"malformed_chunk_ignored"}


async def test_stall_mid_stream_idle_timeout(sdk: AtomaCore, control: Control) -> None:
    await control.script({"type": "stream_fault", "kind": "stall", "after_chunks": 2, "stall_seconds": 10})
    options = RequestOptions(timeouts=Timeouts(idle=0.3))
    started = time.monotonic()
    async with (await chat_create_stream(sdk, chat(), options)).unwrap() as stream:
        result = await stream.collect()
    assert time.monotonic() - started < 2.0
    assert isinstance(result, Err)
    error = result.error
    assert isinstance(error, errors.RequestTimeoutError)
    assert (error.phase, error.timeout, error.attempts) == ("idle", 0.3, 1)
    assert error.partial is not None and error.partial.choices[0].message.content  # the first piece
    (record,) = await control.requests()
    assert record["fault"] == "stream:stall@2"
    assert 0.2 < record["stall_waited"] < 2.0  # we hung up; llmock stopped waiting too
    assert "no_read_timeout" not in codes(await control.verdict())


async def test_stall_after_headers_read_timeout(sdk: AtomaCore, control: Control) -> None:
    """Headers, then silence on every attempt: the socket read timeout ends it (phase 'read')."""
    stall = {"type": "stream_fault", "kind": "stall", "after_chunks": 0, "stall_seconds": 10, "times": None}
    await control.script(stall)
    done = await stream_to_end(sdk, chat(), RequestOptions(timeouts=Timeouts(read=0.3)))
    assert isinstance(done, Err)
    error = done.error
    assert isinstance(error, errors.RequestTimeoutError) and error.phase == "read" and error.timeout == 0.3
    assert error.attempts == 3  # nothing reached our code: retried like a read timeout before headers
    assert len(await control.requests()) == 3


async def test_read_timeout_before_first_event_is_retried(sdk: AtomaCore, control: Control) -> None:
    """README, Streaming: "chat_create_stream returns once the first event has arrived ... any
    failure up to that point is an Err, retried under the same rules as chat_create. That covers
    ... a timeout". chat_create retries a read timeout (test_delay_read_timeout_is_retried), so a
    read timeout after the headers and before the first event is retried too. (It was not, when
    this test was written: the RequestTimeoutError came back after 1 attempt; fixed in f38477c.)"""
    await control.script({"type": "stream_fault", "kind": "stall", "after_chunks": 0, "stall_seconds": 10})
    result = await stream_to_end(sdk, chat(), RequestOptions(timeouts=Timeouts(read=0.3)))
    assert isinstance(result, Ok), (
        f"{result!r}, attempts={getattr(result, 'error', None) and result.error.attempts}"
    )
    assert result.value.meta is not None and result.value.meta.attempts == 2


async def test_disconnect_before_first_event_is_retried(sdk: AtomaCore, control: Control) -> None:
    """Nothing reached our code yet: a drop before the first event is retried like a connect error."""
    await control.script({"type": "stream_fault", "kind": "disconnect", "after_chunks": 0})
    async with (await chat_create_stream(sdk, chat())).unwrap() as stream:
        assert stream.attempts == 2
        done = (await stream.collect()).unwrap()
    assert done.choices[0].finish_reason == "stop"
    assert [(r["fault"], r["completed"]) for r in await control.requests()] == [
        ("stream:disconnect@0", False),
        (None, True),
    ]
    verdict = await control.verdict()
    assert verdict["passed"] is True and verdict["attempts"] == 2 and verdict["findings"] == []


async def test_disconnect_before_first_event_every_time(sdk: AtomaCore, control: Control) -> None:
    await control.script({"type": "stream_fault", "kind": "disconnect", "after_chunks": 0, "times": None})
    result = await chat_create_stream(sdk, chat())
    assert isinstance(result, Err)
    error = result.error
    assert type(error) is errors.APIConnectionError  # not a StreamError: no stream was handed out
    assert error.attempts == 3
    assert error.message.startswith("connection dropped before the first event")
    assert len(await control.requests()) == 3


@pytest.mark.parametrize(
    ("kind", "cls"), [("truncate", errors.StreamTruncatedError), ("malformed", errors.StreamInterruptedError)]
)
async def test_bad_first_event_is_not_retried(sdk: AtomaCore, control: Control, kind: str, cls: type) -> None:
    """An empty body (llama.cpp's answer to a streamed context overflow) or a malformed first
    frame: one attempt (chat_create does not retry an unreadable 200 either), nothing accumulated."""
    await control.script({"type": "stream_fault", "kind": kind, "after_chunks": 0})
    result = await stream_to_end(sdk, chat())
    assert isinstance(result, Err)
    assert type(result.error) is cls and result.error.attempts == 1
    assert result.error.partial is not None and result.error.partial.choices == []
    assert len(await control.requests()) == 1


async def test_slow_first_token(sdk: AtomaCore, control: Control) -> None:
    await control.script({"type": "slow_first_token", "seconds": 5})
    options = RequestOptions(timeouts=Timeouts(first_token=0.3))
    started = time.monotonic()
    done = await stream_to_end(sdk, chat(), options)
    assert time.monotonic() - started < 2.0
    assert isinstance(done, Err)
    assert isinstance(done.error, errors.RequestTimeoutError)
    assert done.error.phase == "first_token" and done.error.timeout == 0.3
    assert done.error.attempts == 1


async def test_slow_first_token_within_deadline(sdk: AtomaCore, control: Control) -> None:
    await control.script({"type": "slow_first_token", "seconds": 0.2})
    options = RequestOptions(timeouts=Timeouts(first_token=2.0, idle=1.0))
    async with (await chat_create_stream(sdk, chat(), options)).unwrap() as stream:
        done = (await stream.collect()).unwrap()
        assert stream.metrics.time_to_first_token is not None
        assert stream.metrics.time_to_first_token >= 0.2
    assert done.choices[0].finish_reason == "stop"


async def test_delay_read_timeout_is_retried(sdk: AtomaCore, control: Control) -> None:
    """No headers within `read`: a read timeout before any response is retried (connection error)."""
    await control.script({"type": "delay", "seconds": 1.0})
    result = await chat_create(sdk, chat(), RequestOptions(timeouts=Timeouts(read=0.3)))
    assert isinstance(result, Ok), result
    assert result.value.meta is not None and result.value.meta.attempts == 2


async def test_delay_total_timeout_is_not_retried(sdk: AtomaCore, control: Control) -> None:
    await control.script({"type": "delay", "seconds": 1.0})
    started = time.monotonic()
    result = await chat_create(sdk, chat(), RequestOptions(timeouts=Timeouts(total=0.3)))
    assert time.monotonic() - started < 0.9
    assert isinstance(result, Err) and isinstance(result.error, errors.RequestTimeoutError)
    assert result.error.phase == "total" and result.error.attempts == 1


async def test_cancelled_stream_closes_connection(sdk: AtomaCore, control: Control) -> None:
    """Leaving `async with` early closes the response: llmock sees the client go during a stall."""
    await control.script({"type": "stream_fault", "kind": "stall", "after_chunks": 2, "stall_seconds": 10})
    received = 0
    async with (await chat_create_stream(sdk, chat())).unwrap() as stream:
        async for _ in stream:
            received += 1
            if received == 2:  # llmock is now holding event #2
                break
    assert stream.closed
    await asyncio.sleep(0.1)
    (record,) = await control.requests()
    assert record["completed"] is False
    assert record["stall_waited"] is not None and record["stall_waited"] < 2.0


# ================================================== structured outputs and tools over llmock


class _Weather(msgspec.Struct):
    city: str
    unit: Literal["c", "f"]


async def test_parse_tool_mode_from_llmocks_tool_call(sdk: AtomaCore, control: Control) -> None:
    parsed = (await chat_parse(sdk, chat("weather in Paris?"), _Weather, mode="tool")).unwrap()
    assert parsed.choices[0].message.parsed == _Weather("mock-city", "c")
    sent = (await control.requests())[-1]["body"]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "_Weather"}}


async def test_parse_stream_tool_mode_snapshots_llmocks_fragments(sdk: AtomaCore, control: Control) -> None:
    opened = await chat_parse_stream(sdk, chat("weather?"), _Weather, mode="tool")
    snapshots = []
    async with opened.unwrap() as stream:
        async for _ in stream:
            snapshots.append(json.dumps(stream.snapshot))
        parsed = (await stream.collect()).unwrap()
    assert parsed.choices[0].message.parsed == _Weather("mock-city", "c")
    assert json.loads(snapshots[-1]) == {"city": "mock-city", "unit": "c"}


async def test_tool_loop_against_llmock(sdk: AtomaCore, control: Control) -> None:
    @tool
    def get_weather(city: str, unit: Literal["c", "f"]) -> dict[str, Any]:
        """Get weather for a city."""
        return {"city": city, "temp": 21, "unit": unit}

    run = (await chat_run_tools(sdk, chat("What is the weather in Paris?"), [get_weather])).unwrap()
    assert run.rounds == 2 and [c.arguments for c in run.calls] == [{"city": "mock-city", "unit": "c"}]
    assert run.response is not None and run.response.choices[0].message.content
    bodies = [r["body"] for r in await control.requests()]
    assert bodies[1]["messages"][2] == {
        "role": "tool",
        "tool_call_id": run.calls[0].id,
        "content": '{"city":"mock-city","temp":21,"unit":"c"}',
    }
