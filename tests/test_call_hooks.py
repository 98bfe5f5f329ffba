"""Call-level hooks (`on_call_start` / `on_call_end`), header edits in `before_request`, and
several `Hooks` on one core: the general mechanism tracing is built on."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

from atoma_core import AtomaCore, CallInfo, HookContext, Hooks, errors
from atoma_core.models.chat import ChatCompletionRequest
from atoma_core.testing import Sandbox, faults
from atoma_funcs import chat_create, chat_create_stream

from .conftest import CHAT, STREAM_CHAT, TOKEN


class CallRecorder:
    """Records (event, operation, attempts, value type, error type) per call-level hook."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, int, str | None, str | None]] = []
        self.infos: list[CallInfo] = []

    def start(self, info: CallInfo) -> None:
        self.infos.append(info)
        self.events.append(("start", info.operation_id, info.attempts, None, None))

    def end(self, info: CallInfo) -> None:
        value = type(info.value).__name__ if info.value is not None else None
        error = type(info.error).__name__ if info.error is not None else None
        self.events.append(("end", info.operation_id, info.attempts, value, error))

    def hooks(self) -> Hooks:
        return Hooks(on_call_start=self.start, on_call_end=self.end)


async def test_start_sees_the_validated_request_and_end_the_value_once(core: AtomaCore) -> None:
    rec = CallRecorder()
    core.add_hooks(rec.hooks())
    res = await chat_create(core, {**CHAT, "temperature": 0.5})
    assert res.ok
    assert rec.events == [
        ("start", "chat_completions_create", 0, None, None),
        ("end", "chat_completions_create", 1, "ChatCompletionResponse", None),
    ]
    request = rec.infos[0].request
    assert isinstance(request, ChatCompletionRequest)
    assert request.temperature == 0.5 and request.stream is False  # after the operation's fixes
    assert rec.infos[0].value is res.value


async def test_end_gets_the_final_error_after_retries(core: AtomaCore, sandbox: Sandbox) -> None:
    rec = CallRecorder()
    core.add_hooks(rec.hooks())
    sandbox.script(faults.status(503, times=None))
    res = await chat_create(core, CHAT)
    assert isinstance(res.error, errors.InternalServerError)
    assert rec.events[-1] == ("end", "chat_completions_create", 3, None, "InternalServerError")
    assert len(rec.events) == 2


async def test_a_stream_ends_the_call_when_it_ends(core: AtomaCore) -> None:
    rec = CallRecorder()
    core.add_hooks(rec.hooks())
    stream = (await chat_create_stream(core, STREAM_CHAT)).unwrap()
    assert rec.infos[0].request.stream is True
    async with stream:
        async for _ in stream:
            assert len(rec.events) == 1  # still open
    assert rec.events[-1] == ("end", "chat_completions_create_stream", 1, "ChatCompletionStream", None)
    assert rec.infos[0].value is stream and stream.usage is not None
    await stream.aclose()
    assert len(rec.events) == 2  # once


async def test_a_stream_failure_ends_the_call_with_the_error(core: AtomaCore, sandbox: Sandbox) -> None:
    rec = CallRecorder()
    core.add_hooks(rec.hooks())
    sandbox.script(faults.truncate(after_chunks=2))
    stream = (await chat_create_stream(core, STREAM_CHAT)).unwrap()
    with pytest.raises(errors.StreamTruncatedError):
        async with stream:
            async for _ in stream:
                pass
    assert rec.events[-1][4] == "StreamTruncatedError"
    assert len(rec.events) == 2


async def test_a_stream_retried_before_its_first_event_ends_once(core: AtomaCore, sandbox: Sandbox) -> None:
    rec = CallRecorder()
    core.add_hooks(rec.hooks())
    sandbox.script(faults.error_event(after_chunks=0))  # an error as the first event: retried
    stream = (await chat_create_stream(core, STREAM_CHAT)).unwrap()
    assert len(rec.events) == 1  # the first attempt's stream did not end the call
    await stream.collect()
    assert rec.events[-1] == ("end", "chat_completions_create_stream", 2, "ChatCompletionStream", None)


async def test_a_cancelled_call_ends_with_the_cancellation(core: AtomaCore, sandbox: Sandbox) -> None:
    rec = CallRecorder()
    sending = asyncio.Event()
    core.add_hooks(rec.hooks())
    core.add_hooks(Hooks(before_request=lambda ctx: sending.set()))
    sandbox.script(faults.hang())
    task = asyncio.create_task(chat_create(core, CHAT))
    await sending.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert rec.events[-1][4] == "CancelledError"


async def test_an_abandoned_stream_ends_the_call_from_the_loop(core: AtomaCore) -> None:
    rec = CallRecorder()
    core.add_hooks(rec.hooks())
    stream = (await chat_create_stream(core, STREAM_CHAT)).unwrap()
    with pytest.warns(ResourceWarning):
        del stream
        gc.collect()
    assert len(rec.events) == 1  # not inside the collector
    await asyncio.sleep(0)
    assert rec.events[-1][:4] == ("end", "chat_completions_create_stream", 1, "ChatCompletionStream")


async def test_a_failing_start_hook_fails_the_call_unsent(core: AtomaCore, sandbox: Sandbox) -> None:
    ended: list[CallInfo] = []

    def broken(info: CallInfo) -> None:
        raise RuntimeError("start bug")

    core.add_hooks(Hooks(on_call_start=broken, on_call_end=ended.append))
    res = await chat_create(core, CHAT)
    assert isinstance(res.error, errors.UnexpectedClientError)
    assert isinstance(res.error.__cause__, RuntimeError)
    assert sandbox.requests == []
    assert [info.error for info in ended] == [res.error]


async def test_a_failing_end_hook_is_logged_and_changes_nothing(
    core: AtomaCore, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(info: CallInfo) -> None:
        raise RuntimeError("end bug")

    core.add_hooks(Hooks(on_call_end=broken))
    with caplog.at_level(logging.ERROR, logger="atoma"):
        res = await chat_create(core, CHAT)
    assert res.ok
    assert any("on_call_end hook failed" in r.getMessage() for r in caplog.records)


async def test_before_request_may_add_headers_per_attempt(core: AtomaCore, sandbox: Sandbox) -> None:
    def tag(ctx: HookContext) -> None:
        ctx.request_headers["X-Attempt"] = str(ctx.attempt)
        ctx.request_headers["Authorization"] = "Bearer stolen"  # ignored: never settable here
        del ctx.request_headers["User-Agent"]

    core.add_hooks(Hooks(before_request=tag))
    sandbox.script(faults.status(503))
    assert (await chat_create(core, CHAT)).ok
    assert [r.headers.get("X-Attempt") for r in sandbox.requests] == ["1", "2"]
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in sandbox.requests)
    assert all("atoma-python" not in r.headers.get("User-Agent", "") for r in sandbox.requests)


@pytest.mark.parametrize(
    "name, value", [("X-Bad", "a\r\nInjected: yes"), ("X Bad", "v"), (7, "v"), ("X-Bad", 7)]
)
async def test_a_bad_header_from_a_hook_is_refused_typed(
    core: AtomaCore, sandbox: Sandbox, name: object, value: object
) -> None:
    def inject(ctx: HookContext) -> None:
        ctx.request_headers[name] = value  # type: ignore[index,assignment]

    core.add_hooks(Hooks(before_request=inject))
    res = await chat_create(core, CHAT)
    assert isinstance(res.error, errors.UnexpectedClientError)
    assert "a before_request hook set a bad header" in res.error.message
    assert sandbox.requests == []


async def test_several_hooks_run_in_order_and_can_be_removed(core: AtomaCore) -> None:
    seen: list[str] = []
    first = Hooks(before_request=lambda ctx: seen.append("first"))
    second = Hooks(before_request=lambda ctx: seen.append("second"), on_call_end=lambda i: seen.append("end"))
    core.add_hooks(first)
    core.add_hooks(second)
    assert (await chat_create(core, CHAT)).ok
    assert seen == ["first", "second", "end"]
    core.remove_hooks(second)
    core.remove_hooks(second)  # absent: no-op
    assert core.hooks == (first,)
    seen.clear()
    assert (await chat_create(core, CHAT)).ok
    assert seen == ["first"]


def test_a_core_takes_one_hooks_or_several() -> None:
    one, two = Hooks(), Hooks()
    assert AtomaCore("t", hooks=one).hooks == (one,)
    assert AtomaCore("t", hooks=[one, two]).hooks == (one, two)
    assert AtomaCore("t").hooks == ()


def test_call_level_hooks_must_be_plain_functions() -> None:
    async def start(info: CallInfo) -> None:
        return None

    with pytest.raises(errors.InvalidRequestError, match=r"Hooks\.on_call_start must be a plain function"):
        Hooks(on_call_start=start)
