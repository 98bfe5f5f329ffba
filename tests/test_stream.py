"""chat_create_stream over loopback HTTP: iteration, accumulation, framing variants, failures
raised as typed errors with `.partial`, and the lifecycle (every exit closes the response)."""

from __future__ import annotations

import asyncio
import gc
import time

import msgspec
import pytest

from atoma_core import AtomaCore, ChatCompletionStream, Err, RequestOptions, RetryConfig, Timeouts, errors
from atoma_core.models import ChatCompletionChunk
from atoma_core.testing import Sandbox, faults
from atoma_funcs import chat_create, chat_create_stream

from .conftest import STREAM_CHAT, TOKEN, acquired_connections

REPLY = "You said: one two three four"
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]


async def open_stream(core: AtomaCore, request: dict[str, object] = STREAM_CHAT) -> ChatCompletionStream:
    res = await chat_create_stream(core, request)
    assert res.ok, res
    return res.value


async def test_iterates_chunks_and_tracks_usage(core: AtomaCore, sandbox: Sandbox) -> None:
    text = []
    async with await open_stream(core) as stream:
        async for chunk in stream:
            assert isinstance(chunk, ChatCompletionChunk)
            if chunk.choices:
                text.append(chunk.choices[0].delta.content or "")
    assert "".join(text) == REPLY
    assert stream.usage is not None and stream.usage.completion_tokens == 6
    assert stream.closed and acquired_connections(core) == 0
    sent = sandbox.requests[-1]
    assert sent.json["stream"] is True and sent.json["stream_options"] == {"include_usage": True}
    assert sent.headers["Accept"] == "text/event-stream"


async def test_user_stream_options_are_merged(core: AtomaCore, sandbox: Sandbox) -> None:
    stream = await open_stream(
        core, {**STREAM_CHAT, "stream": False, "stream_options": {"include_usage": False}}
    )
    await stream.collect()
    assert sandbox.requests[-1].json["stream_options"] == {"include_usage": True}
    assert sandbox.requests[-1].json["stream"] is True


async def test_collect_matches_chat_create(core: AtomaCore) -> None:
    whole = (await chat_create(core, STREAM_CHAT)).unwrap()
    done = await (await open_stream(core)).collect()
    assert done.ok, done
    streamed = done.value
    whole.choices[0].message.tool_calls = None  # the sandbox, like vLLM, sends `tool_calls: []`
    assert streamed.choices == whole.choices
    assert streamed.usage == whole.usage
    assert (streamed.object, streamed.model) == (whole.object, whole.model)
    assert streamed.meta is not None and streamed.meta.attempts == 1


async def test_tool_call_deltas_are_merged(core: AtomaCore) -> None:
    request = {**STREAM_CHAT, "tools": TOOLS}
    whole = (await chat_create(core, request)).unwrap()
    streamed = (await (await open_stream(core, request)).collect()).unwrap()
    call = streamed.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert (call.id, call.type, call.function.name) == ("call_000002", "function", "lookup")
    assert msgspec.json.decode(call.function.arguments) == {"input": "one two three four"}
    assert streamed.choices[0].finish_reason == "tool_calls"
    assert streamed.choices[0].message.content is None
    assert whole.choices[0].message.tool_calls[0].function == call.function  # type: ignore[index]


@pytest.mark.parametrize(
    "options",
    [
        {"send_done": True},
        {"line_ending": "\r\n"},
        {"line_ending": "\r"},
        {"bom": True},
        {"chunk_delay": 0.05},  # keep-alive comments every 15 ms between chunks
    ],
)
async def test_framing_variants(options: dict[str, object]) -> None:
    async with Sandbox(**options) as sandbox, AtomaCore(TOKEN, sandbox.url) as core:  # type: ignore[arg-type]
        done = await (await open_stream(core)).collect()
        assert done.ok, done
        assert done.value.choices[0].message.content == REPLY
        assert acquired_connections(core) == 0


async def test_a_four_mib_event_decodes(core: AtomaCore, sandbox: Sandbox) -> None:
    sandbox.script(faults.oversized_event(4 * 1024 * 1024))
    done = await (await open_stream(core)).collect()
    assert done.ok, done
    assert len(done.value.choices[0].message.content or "") == 4 * 1024 * 1024 + len(REPLY)


async def test_done_then_linger_releases_promptly(core: AtomaCore, sandbox: Sandbox) -> None:
    sandbox.script(faults.done_then_linger(30))
    started = time.monotonic()
    done = await (await open_stream(core)).collect()
    assert done.ok and time.monotonic() - started < 5
    assert acquired_connections(core) == 0


@pytest.mark.parametrize(
    ("fault", "cls"),
    [
        (faults.reset(3), errors.StreamInterruptedError),
        (faults.truncate(3), errors.StreamTruncatedError),
        (faults.malformed_chunk(3), errors.StreamInterruptedError),
        (faults.malformed_chunk(3, body='{"unexpected": true}'), errors.ResponseValidationError),
        (faults.error_event(3), errors.RateLimitError),
        (faults.error_event(3, code="INTERNAL_ERROR", as_event=True), errors.InternalServerError),
    ],
)
async def test_mid_stream_failures_raise_typed_errors_with_partial(
    core: AtomaCore, sandbox: Sandbox, fault: faults.Fault, cls: type[errors.AtomaError]
) -> None:
    sandbox.script(fault)
    stream = await open_stream(core)
    seen = []
    with pytest.raises(cls) as info:
        async for chunk in stream:
            seen.append(chunk)
    assert type(info.value) is cls
    assert len(seen) == 3
    partial = info.value.partial
    assert partial is not None and partial.choices[0].message.content == "You said:"
    assert stream.closed and acquired_connections(core) == 0
    with pytest.raises(StopAsyncIteration):  # a failed stream stays ended
        await stream.__anext__()


async def test_collect_returns_the_error(core: AtomaCore, sandbox: Sandbox) -> None:
    sandbox.script(faults.truncate(2))
    done = await (await open_stream(core)).collect()
    assert isinstance(done, Err) and isinstance(done.error, errors.StreamTruncatedError)
    assert done.error.partial is not None


async def test_errors_before_the_body_are_err(core: AtomaCore, sandbox: Sandbox) -> None:
    sandbox.script(faults.status(402))
    res = await chat_create_stream(core, STREAM_CHAT)
    assert isinstance(res, Err) and isinstance(res.error, errors.InsufficientBalanceError)
    sandbox.script(
        faults.status(
            200, body='{"error": {"code": "AUTH_ERROR", "message": "no"}}', content_type="application/json"
        )
    )
    res = await chat_create_stream(core, STREAM_CHAT)
    assert isinstance(res, Err) and isinstance(res.error, errors.AuthenticationError)


async def test_break_closes_and_returns_the_connection(core: AtomaCore, sandbox: Sandbox) -> None:
    async with Sandbox(chunk_delay=0.01) as slow, AtomaCore(TOKEN, slow.url) as slow_core:
        stream = await open_stream(slow_core)
        async with stream:
            async for _ in stream:
                break
        assert stream.closed and acquired_connections(slow_core) == 0
        await stream.aclose()  # idempotent
        assert (await chat_create(slow_core, STREAM_CHAT)).ok  # the core still works


async def test_exception_in_loop_body_closes(core: AtomaCore) -> None:
    stream = await open_stream(core)
    with pytest.raises(ZeroDivisionError):
        async with stream:
            async for _ in stream:
                1 / 0  # noqa: B018
    assert stream.closed and acquired_connections(core) == 0


async def test_cancellation_closes_and_propagates(sandbox: Sandbox) -> None:
    async with Sandbox(chunk_delay=0.05) as slow, AtomaCore(TOKEN, slow.url) as core:
        stream = await open_stream(core)
        started = asyncio.Event()

        async def consume() -> None:
            async with stream:
                async for _ in stream:
                    started.set()

        task = asyncio.create_task(consume())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert stream.closed and acquired_connections(core) == 0


async def test_unclosed_stream_warns_on_gc(core: AtomaCore) -> None:
    stream = await open_stream(core)
    with pytest.warns(ResourceWarning, match="unclosed"):
        del stream
        gc.collect()
    assert acquired_connections(core) == 0


async def test_metrics_after_the_end(core: AtomaCore) -> None:
    stream = await open_stream(core)
    await stream.collect()
    metrics = stream.metrics
    assert metrics.chunks == 9  # role, 6 tokens, finish, usage
    assert metrics.attempts == 1 and metrics.completion_tokens == 6
    assert metrics.time_to_first_token is not None and 0 < metrics.time_to_first_token <= metrics.elapsed
    assert metrics.tokens_per_second is not None and metrics.tokens_per_second > 0


async def test_stream_retried_before_its_first_byte(core: AtomaCore, sandbox: Sandbox) -> None:
    sandbox.script(faults.status(503), faults.reset())
    stream = await open_stream(core)
    assert stream.attempts == 3
    assert (await stream.collect()).ok
    sandbox.script(faults.reset(2))  # after the body started: never retried
    res = await chat_create_stream(core, STREAM_CHAT, RequestOptions(retries=RetryConfig()))
    with pytest.raises(errors.StreamInterruptedError):
        async with res.unwrap() as s:
            async for _ in s:
                pass
    assert len(sandbox.requests) == 4


async def test_an_error_as_the_first_event_is_retried(core: AtomaCore, sandbox: Sandbox) -> None:
    sandbox.script(faults.error_event(0), faults.reset(0))  # nothing reached the user yet
    stream = await open_stream(core)
    assert stream.attempts == 3
    assert (await stream.collect()).unwrap().choices[0].message.content == REPLY
    sandbox.script(faults.error_event(0, code="REQUEST_ERROR", message="bad"))  # 400: not retried
    res = await chat_create_stream(core, STREAM_CHAT)
    assert isinstance(res, Err) and isinstance(res.error, errors.BadRequestError)
    assert res.error.attempts == 1 and acquired_connections(core) == 0


async def test_a_read_stall_before_the_first_event_is_retried(sandbox: Sandbox) -> None:
    sandbox.script(faults.stall(0))
    async with AtomaCore(TOKEN, sandbox.url, timeouts=Timeouts(read=0.3)) as core:
        stream = await open_stream(core)
        assert stream.attempts == 2
        assert (await stream.collect()).ok


async def test_nothing_is_handed_out_after_a_failure_in_the_same_read() -> None:
    """A malformed frame followed, in the same TCP write, by a valid chunk: the stream ends at
    the bad frame and stays ended."""
    from aiohttp import web

    good = b'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n'

    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(good + b"data: {oops\n\n" + good)
        return resp

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        async with AtomaCore("t", f"http://127.0.0.1:{runner.addresses[0][1]}") as core:
            stream = await open_stream(core)
            assert (await stream.__anext__()).choices[0].delta.content == "a"
            with pytest.raises(errors.StreamInterruptedError):
                await stream.__anext__()
            with pytest.raises(StopAsyncIteration):
                await stream.__anext__()
            assert stream.partial.choices[0].message.content == "a"
    finally:
        await runner.cleanup()
