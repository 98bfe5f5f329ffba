"""Hooks (order per attempt, sync and async, on retries, streams and failures) and the "atoma"
DEBUG log (what it says, and that the token and message contents never appear)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from atoma_core import AtomaCore, HookContext, Hooks, RequestOptions, RetryConfig, errors
from atoma_core.testing import Sandbox, faults
from atoma_funcs import AtomaSDK, chat_create, chat_create_stream

from .conftest import TOKEN, _fast_backoff, free_port

SECRET_TEXT = "my-confidential-phrase-42"
CHAT_SECRET = {"model": "m", "messages": [{"role": "user", "content": SECRET_TEXT}]}
RETRY = RetryConfig(backoff=_fast_backoff())


class Recorder:
    """Hooks that record (hook name, attempt, status, error class) and the contexts they saw."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int, int | None, str | None]] = []
        self.contexts: list[HookContext] = []

    def _record(self, name: str, ctx: HookContext) -> None:
        error = type(ctx.error).__name__ if ctx.error is not None else None
        self.events.append((name, ctx.attempt, ctx.status, error))
        self.contexts.append(ctx)

    def sync(self, name: str) -> Callable[[HookContext], None]:
        def hook(ctx: HookContext) -> None:
            self._record(name, ctx)

        return hook

    def async_(self, name: str) -> Callable[[HookContext], Any]:
        async def hook(ctx: HookContext) -> None:
            self._record(name, ctx)

        return hook

    def hooks(self, style: str) -> Hooks:
        make = {"sync": self.sync, "async": self.async_}
        if style == "mixed":
            return Hooks(
                before_request=self.sync("before_request"),
                after_success=self.async_("after_success"),
                after_error=self.sync("after_error"),
            )
        return Hooks(
            before_request=make[style]("before_request"),
            after_success=make[style]("after_success"),
            after_error=make[style]("after_error"),
        )


def _core(url: str, hooks: Hooks | None = None, token: str = TOKEN, **kw: Any) -> AtomaCore:
    return AtomaCore(token, url, retry_config=kw.pop("retry_config", RETRY), hooks=hooks, **kw)


# ------------------------------------------------------------------ hooks


@pytest.mark.parametrize("style", ["sync", "async", "mixed"])
async def test_hook_order_with_a_503_then_success(sandbox: Sandbox, style: str) -> None:
    rec = Recorder()
    sandbox.script(faults.status(503))
    async with _core(sandbox.url, rec.hooks(style)) as core:
        res = await chat_create(core, CHAT_SECRET)
    assert res.ok
    assert rec.events == [
        ("before_request", 1, None, None),
        ("after_error", 1, 503, "InternalServerError"),
        ("before_request", 2, None, None),
        ("after_success", 2, 200, None),
    ]


async def test_one_context_per_attempt(sandbox: Sandbox) -> None:
    rec = Recorder()
    sandbox.script(faults.status(503))
    async with _core(sandbox.url, rec.hooks("sync")) as core:
        await chat_create(core, CHAT_SECRET)
    first, error_ctx, second, success_ctx = rec.contexts
    assert first is error_ctx and second is success_ctx and first is not second
    assert {c.operation_id for c in rec.contexts} == {"chat_completions_create"}
    assert success_ctx.method == "POST"
    assert success_ctx.url == f"{sandbox.url}/v1/chat/completions"
    assert success_ctx.body == sandbox.requests[-1].raw  # the request as sent (messages included:
    assert SECRET_TEXT.encode() in success_ctx.body  # a hook may need them; only logs must not hold them)
    assert success_ctx.response_headers is not None
    assert success_ctx.response_headers["x-request-id"] == "chatcmpl-000001"
    assert isinstance(error_ctx.error, errors.InternalServerError)


async def test_hooks_on_a_stream(sandbox: Sandbox) -> None:
    rec = Recorder()
    sandbox.script(faults.status(429, headers={"Retry-After": "0"}))
    async with _core(sandbox.url, rec.hooks("async")) as core:
        stream = (await chat_create_stream(core, CHAT_SECRET)).unwrap()
        # after_success ran once the headers arrived, before any chunk was read
        assert rec.events[-1] == ("after_success", 2, 200, None)
        async with stream:
            await stream.collect()
    assert [e[:2] for e in rec.events] == [
        ("before_request", 1),
        ("after_error", 1),
        ("before_request", 2),
        ("after_success", 2),
    ]
    assert rec.events[1][3] == "RateLimitError"
    assert {c.operation_id for c in rec.contexts} == {"chat_completions_create_stream"}


async def test_hooks_through_the_bundled_client(sandbox: Sandbox) -> None:
    rec = Recorder()
    async with AtomaSDK(TOKEN, sandbox.url, hooks=rec.hooks("sync")) as sdk:
        await sdk.chat.create(CHAT_SECRET)
        with pytest.raises(errors.BadRequestError):
            sandbox.script(faults.status(400))
            await sdk.chat.create(CHAT_SECRET)
    assert [e[0] for e in rec.events] == ["before_request", "after_success", "before_request", "after_error"]


async def test_after_error_on_a_connection_failure() -> None:
    rec = Recorder()
    url = f"http://127.0.0.1:{free_port()}"
    async with _core(url, rec.hooks("sync")) as core:
        res = await chat_create(core, CHAT_SECRET)
    assert not res.ok
    assert rec.events == [
        ("before_request", 1, None, None),
        ("after_error", 1, None, "APIConnectionError"),
        ("before_request", 2, None, None),
        ("after_error", 2, None, "APIConnectionError"),
        ("before_request", 3, None, None),
        ("after_error", 3, None, "APIConnectionError"),
    ]


async def test_a_failing_hook_is_reported_typed_and_not_retried(sandbox: Sandbox) -> None:
    def broken(ctx: HookContext) -> None:
        raise RuntimeError("hook bug")

    async with _core(sandbox.url, Hooks(before_request=broken)) as core:
        res = await chat_create(core, CHAT_SECRET)
    assert not res.ok
    assert isinstance(res.error, errors.UnexpectedClientError)
    assert isinstance(res.error.__cause__, RuntimeError)
    assert res.error.attempts == 1
    assert sandbox.requests == []


async def test_no_hooks_no_contexts(core: AtomaCore) -> None:
    assert core.hooks == ()
    assert (await chat_create(core, CHAT_SECRET)).ok


async def test_hook_context_never_holds_the_token(sandbox: Sandbox) -> None:
    rec = Recorder()
    sandbox.script(faults.status(503), faults.status(401))
    options = RequestOptions(headers={"authorization": f"Bearer {TOKEN}", "X-Trace": "t1"})
    async with _core(sandbox.url, rec.hooks("async")) as core:
        await chat_create(core, CHAT_SECRET, options)
        await chat_create(core, CHAT_SECRET)
    assert len(rec.contexts) == 6
    for ctx in rec.contexts:
        assert all(name.lower() != "authorization" for name in ctx.request_headers)
        assert ctx.request_headers.get("X-Trace", "t1") == "t1"
        seen = " ".join(
            [
                repr(ctx),
                str(dict(ctx.request_headers)),
                str(dict(ctx.response_headers or {})),
                repr(ctx.error),
            ]
        )
        assert TOKEN not in seen
        assert TOKEN.encode() not in ctx.body


# ------------------------------------------------------------------ logging


def _atoma_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "atoma" or r.name.startswith("atoma.")]


def _assert_redacted(records: list[logging.LogRecord], *secrets: str) -> None:
    for record in records:
        text = " ".join([record.getMessage(), repr(record.args), record.exc_text or ""])
        for secret in secrets:
            assert secret not in text, text


async def test_debug_lines_for_start_end_status_attempt_and_request_id(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="atoma")
    sandbox.script(faults.status(503))
    async with _core(sandbox.url) as core:
        assert (await chat_create(core, CHAT_SECRET)).ok
    records = _atoma_records(caplog)
    messages = [r.getMessage() for r in records]
    assert all(r.levelno == logging.DEBUG for r in records)
    url = f"{sandbox.url}/v1/chat/completions"
    assert messages[0] == f"chat_completions_create attempt 1: POST {url}"
    assert messages[1].startswith("chat_completions_create attempt 1: HTTP 503 in ")
    assert " ms, request id " in messages[1]
    assert messages[2].startswith("chat_completions_create retry 1 in ")
    assert "after attempt 1" in messages[2]
    assert messages[3] == f"chat_completions_create attempt 2: POST {url}"
    assert messages[4].startswith("chat_completions_create attempt 2: HTTP 200 in ")
    assert messages[4].endswith("request id chatcmpl-000001")
    assert len(messages) == 5
    _assert_redacted(records, TOKEN, SECRET_TEXT)


async def test_stream_debug_lines(sandbox: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="atoma")
    async with _core(sandbox.url) as core:
        stream = (await chat_create_stream(core, CHAT_SECRET)).unwrap()
        async with stream:
            await stream.collect()
    messages = [r.getMessage() for r in _atoma_records(caplog)]
    assert messages[0].startswith("chat_completions_create_stream attempt 1: POST ")
    assert any("HTTP 200" in m and "request id chatcmpl-000001" in m for m in messages)
    _assert_redacted(_atoma_records(caplog), TOKEN, SECRET_TEXT, "You said")


@pytest.mark.parametrize(
    "fault",
    [
        faults.status(401),
        faults.status(400),
        faults.status(503, times=None),
        faults.reset(),
        faults.error_event(after_chunks=2),
        faults.truncate(after_chunks=2),
    ],
)
async def test_token_and_contents_never_logged_on_failures(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture, fault: faults.Fault
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, aiohttp's included
    sandbox.script(fault)
    async with _core(sandbox.url) as core:
        await chat_create(core, CHAT_SECRET)
        sandbox.script(fault)
        started = await chat_create_stream(core, CHAT_SECRET)
        if started.ok:
            async with started.value as stream:
                await stream.collect()
    assert _atoma_records(caplog)
    client_records = [r for r in caplog.records if not r.name.startswith("aiohttp.server")]
    _assert_redacted(client_records, TOKEN, SECRET_TEXT)


async def test_a_wrong_token_is_not_logged(sandbox: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="atoma")
    async with _core(sandbox.url, token="sk-wrong-but-still-secret") as core:
        res = await chat_create(core, CHAT_SECRET)
    assert not res.ok and isinstance(res.error, errors.AuthenticationError)
    assert _atoma_records(caplog)
    _assert_redacted(_atoma_records(caplog), "sk-wrong-but-still-secret", SECRET_TEXT)


async def test_silent_above_debug(sandbox: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="atoma")
    sandbox.script(faults.status(503))
    async with _core(sandbox.url) as core:
        assert (await chat_create(core, CHAT_SECRET)).ok
    assert _atoma_records(caplog) == []
