"""The SDK against a real LLM: Gemma 3 270M (a *base* model) on llama-cpp-python's
OpenAI-compatible server. Run by `make e2e` (tests/e2e/run.sh), which starts the server and passes
its URL in E2E_BASE_URL; skipped without it. Not part of `make test`.

The model's wording is never asserted, only the structure and `finish_reason`. What this server
does differently from Atoma's proxy (docs: /tmp/notes/e2e.md): no usage chunk in streams (it
drops `stream_options`), `max_tokens` honoured but not `max_completion_tokens`, `[DONE]` sent,
and a stream whose prompt overflows the context is `200` with an empty body.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from atoma_core import AtomaCore, Err, Ok, RequestOptions, Result, Timeouts, errors
from atoma_core.models import ChatCompletionResponse
from atoma_funcs import chat_create, chat_create_stream

BASE_URL = os.environ.get("E2E_BASE_URL", "")
MODEL = os.environ.get("E2E_MODEL", "gemma-3-270m")
REPORT = os.environ.get("E2E_REPORT")
ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not BASE_URL, reason="needs a running LLM server: run `make e2e`"),
]

OVERFLOW = "hello " * 800  # ~810 prompt tokens > n_ctx 512


def report(line: str) -> None:
    """A line for run.sh's summary (and for `pytest -s`)."""
    print(line)
    if REPORT:
        with open(REPORT, "a", encoding="utf-8") as out:
            out.write(line + "\n")


def chat(prompt: str = "Say hello in one short sentence.", **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": prompt}], **extra}


@pytest.fixture
async def core() -> AsyncIterator[AtomaCore]:
    # No token: the server runs without --api_key. Generous deadlines: 2 CPU threads.
    sdk = AtomaCore(server_url=BASE_URL + "/v1", timeouts=Timeouts(connect=5, read=60, total=120))
    yield sdk
    await sdk.close()
    gc.collect()


async def stream_to_end(
    core: AtomaCore, request: dict[str, Any], options: RequestOptions | None = None
) -> Result[ChatCompletionResponse, errors.AtomaError]:
    """The outcome of a whole streamed call, whether it fails while opening or while reading."""
    opened = await chat_create_stream(core, request, options)
    if isinstance(opened, Err):
        return opened
    async with opened.value as stream:
        return await stream.collect()


# ===================================================================== non-stream


async def test_non_stream_max_tokens(core: AtomaCore) -> None:
    started = time.monotonic()
    result = await chat_create(core, chat(max_tokens=16, temperature=0))
    elapsed = time.monotonic() - started
    assert isinstance(result, Ok), result
    response = result.value
    assert response.id.startswith("chatcmpl-")
    assert response.object == "chat.completion"
    assert response.model == MODEL
    assert response.created > 0
    (choice,) = response.choices
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str)
    assert choice.message.tool_calls is None
    assert choice.finish_reason in ("length", "stop")
    usage = response.usage
    assert usage is not None
    assert usage.prompt_tokens > 0 and 0 < usage.completion_tokens <= 16
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    if choice.finish_reason == "length":
        assert usage.completion_tokens == 16  # max_tokens is honoured exactly
    meta = response.meta
    assert meta is not None and meta.attempts == 1
    assert meta.request_id and meta.headers["content-type"].startswith("application/json")
    report(
        f"non-stream: {usage.completion_tokens} tokens in {elapsed:.2f} s "
        f"({usage.completion_tokens / elapsed:.1f} tokens/s incl. prompt), finish_reason={choice.finish_reason}"
    )


async def test_max_tokens_is_what_bounds_this_server(core: AtomaCore) -> None:
    """The SDK sends what it is given: max_tokens (llama.cpp ignores max_completion_tokens)."""
    response = (await chat_create(core, chat("Count: 1, 2, 3,", max_tokens=4))).unwrap()
    assert response.usage is not None and response.usage.completion_tokens <= 4


# ======================================================================= stream


async def test_stream_max_tokens(core: AtomaCore) -> None:
    result = await chat_create_stream(core, chat("Count from 1 to 50:", max_tokens=48, temperature=0))
    assert isinstance(result, Ok), result
    chunks = []
    async with result.value as stream:
        async for chunk in stream:
            chunks.append(chunk)
        # No usage chunk from this server (it drops stream_options): None, and nothing breaks.
        assert stream.usage is None
        metrics = stream.metrics
        done = await stream.collect()
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.usage is None for c in chunks)
    assert all(len(c.choices) == 1 for c in chunks)  # no trailing usage chunk
    finish = chunks[-1].choices[0].finish_reason
    assert finish in ("length", "stop")
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")
    content_chunks = [c for c in chunks if c.choices[0].delta.content]
    if finish == "length":
        assert len(content_chunks) <= 48  # one chunk per token
    assert metrics.chunks == len(chunks) and metrics.attempts == 1
    assert metrics.completion_tokens is None and metrics.tokens_per_second is None  # need usage
    assert metrics.time_to_first_token is not None and 0 < metrics.time_to_first_token < metrics.elapsed
    assert isinstance(done, Ok), done
    response = done.value
    assert response.usage is None
    (choice,) = response.choices
    assert choice.finish_reason == finish
    assert choice.message.role == "assistant"
    assert choice.message.content == "".join(c.choices[0].delta.content or "" for c in chunks)
    generating = metrics.elapsed - metrics.time_to_first_token
    rate = (len(content_chunks) - 1) / generating if generating > 0 and len(content_chunks) > 1 else 0.0
    report(
        f"stream (SDK StreamMetrics): {len(content_chunks)} content chunks (1 per token), "
        f"time to first token {metrics.time_to_first_token * 1000:.0f} ms, elapsed {metrics.elapsed:.2f} s, "
        f"~{rate:.1f} tokens/s after the first token (usage/tokens_per_second: not reported by llama.cpp)"
    )


async def test_stream_and_non_stream_agree_at_temperature_0(core: AtomaCore) -> None:
    request = chat("The capital of France is", max_tokens=12, temperature=0, seed=7)
    whole = (await chat_create(core, request)).unwrap()
    streamed = await stream_to_end(core, request)
    assert isinstance(streamed, Ok), streamed
    assert streamed.value.choices[0].message.content == whole.choices[0].message.content
    assert streamed.value.choices[0].finish_reason == whole.choices[0].finish_reason


async def test_stop_sequence(core: AtomaCore) -> None:
    response = (await chat_create(core, chat("Write three lines:", stop=["\n"], max_tokens=64))).unwrap()
    choice = response.choices[0]
    assert "\n" not in (choice.message.content or "")
    assert choice.finish_reason in ("stop", "length")


# ============================================================= context overflow


async def test_context_overflow_non_stream_is_bad_request(core: AtomaCore) -> None:
    result = await chat_create(core, chat(OVERFLOW, max_tokens=16))
    assert isinstance(result, Err)
    error = result.error
    assert isinstance(error, errors.BadRequestError)
    assert error.status_code == 400 and error.code == "context_length_exceeded"
    assert error.type == "invalid_request_error" and error.param == "messages"
    assert "maximum context length is 512 tokens" in error.message
    assert error.attempts == 1  # a 400 is not retried


async def test_context_overflow_stream_is_truncated(core: AtomaCore) -> None:
    """Streamed, the same overflow is `200 text/event-stream` with an empty body (no error event,
    no [DONE]): the SDK reports StreamTruncatedError with nothing accumulated, not an empty answer."""
    result = await stream_to_end(core, chat(OVERFLOW, max_tokens=16))
    assert isinstance(result, Err)
    error = result.error
    assert isinstance(error, errors.StreamTruncatedError)
    assert error.attempts == 1
    assert error.partial is not None and error.partial.choices == []


# ========================================================================== CLI

CLI_PRESENT = (ROOT / "atoma_funcs" / "__main__.py").exists()
needs_cli = pytest.mark.skipif(not CLI_PRESENT, reason="atoma_funcs/__main__.py is not there yet")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATOMASDK_")}
    command = [sys.executable, "-m", "atoma_funcs", "chat", *args]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=120, cwd=ROOT, env=env, check=False
    )


@needs_cli
def test_cli_chat_streams_the_answer() -> None:
    started = time.monotonic()
    done = run_cli("Say hello.", "--server-url", BASE_URL, "--model", MODEL, "--max-tokens", "16")
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert "usage: not reported" in done.stderr  # no usage chunk from llama.cpp: said, not crashed
    assert "1 attempt" in done.stderr
    report(
        f"CLI `python -m atoma_funcs chat ... --max-tokens 16`: exit 0 in {elapsed:.2f} s (process start included)"
    )


@needs_cli
def test_cli_chat_json() -> None:
    done = run_cli("Say hello.", "--server-url", BASE_URL, "--model", MODEL, "--max-tokens", "8", "--json")
    assert done.returncode == 0, done.stderr
    response = json.loads(done.stdout)
    assert response["model"] == MODEL and response["usage"] is None
    assert response["choices"][0]["finish_reason"] in ("length", "stop")
    assert response["choices"][0]["message"]["role"] == "assistant"


@needs_cli
def test_cli_chat_no_stream_reports_usage() -> None:
    done = run_cli(
        "Say hello.", "--server-url", BASE_URL, "--model", MODEL, "--max-tokens", "8", "--no-stream"
    )
    assert done.returncode == 0, done.stderr
    assert "usage: " in done.stderr and " completion = " in done.stderr


@needs_cli
@pytest.mark.parametrize(("flags", "code"), [(["--no-stream"], 4), ([], 7)])
def test_cli_context_overflow_exit_codes(flags: list[str], code: int) -> None:
    """400 -> exit 4 (API error); the empty 200 stream -> exit 7 (the stream broke)."""
    done = run_cli(OVERFLOW, "--server-url", BASE_URL, "--model", MODEL, "--max-tokens", "16", *flags)
    assert done.returncode == code, (done.returncode, done.stderr)
    expected = "BadRequestError" if code == 4 else "StreamTruncatedError"
    assert f"atoma: error: {expected}" in done.stderr


# ------------------------------------------------------------------ legacy completions


async def test_completions_create(core: AtomaCore) -> None:
    from atoma_core.models import CompletionResponse
    from atoma_funcs import completions_create

    result = await completions_create(core, {"model": MODEL, "prompt": "The capital of France is", "max_tokens": 8})
    assert isinstance(result, Ok), result
    response = result.value
    assert isinstance(response, CompletionResponse)
    assert response.choices[0].text and response.choices[0].finish_reason in ("length", "stop")
    assert response.usage is not None and 0 < response.usage.completion_tokens <= 8
    report(f"completions: {response.usage.completion_tokens} tokens, finish {response.choices[0].finish_reason}")


async def test_completions_stream_agrees_with_create_at_temperature_0(core: AtomaCore) -> None:
    from atoma_funcs import completions_create, completions_create_stream

    request = {"model": MODEL, "prompt": "Count: 1, 2, 3,", "max_tokens": 12, "temperature": 0}
    whole = (await completions_create(core, request)).unwrap()
    opened = (await completions_create_stream(core, request)).unwrap()
    pieces: list[str] = []
    async with opened as stream:
        async for chunk in stream:
            pieces.extend(c.text for c in chunk.choices)
    collected = stream.partial
    assert "".join(pieces) == collected.choices[0].text == whole.choices[0].text
    assert collected.choices[0].finish_reason == whole.choices[0].finish_reason
    m = stream.metrics
    report(f"completions stream: {m.chunks} chunks, first token {1000 * (m.time_to_first_token or 0):.0f} ms")
