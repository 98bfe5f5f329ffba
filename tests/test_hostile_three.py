"""Hostile round three (issue 26): deadlines that hooks and re-locks escaped, batch jobs fed
`None` or a 429 for ever, deeply nested JSON, the sync face inside a running loop, tracing that
raises, base64 embeddings. Each over real loopback servers (the sandbox or an aiohttp.web app).
The `atoma batch` files are in test_batch_cli.py."""

from __future__ import annotations

import asyncio
import base64
import logging
import struct
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

import atoma_funcs as funcs
from atoma_core import AtomaCore, BackoffStrategy, Err, Hooks, RequestOptions, RetryConfig, Timeouts, errors
from atoma_core.config import HookContext
from atoma_core.otel import instrument
from atoma_core.testing import Sandbox, faults, sandbox_in_thread
from atoma_funcs import AtomaSyncSDK, BatchResult, batch_run

from .conftest import CHAT, TOKEN, serve_app

CHAT_URL = "/v1/chat/completions"


def chat_item(i: int) -> dict[str, Any]:
    body = {"model": "m", "messages": [{"role": "user", "content": f"item {i}"}]}
    return {"custom_id": f"id-{i}", "url": CHAT_URL, "body": body}


async def collect(results: AsyncIterator[BatchResult]) -> list[BatchResult]:
    return [result async for result in results]


# ------------------------------------------------------------------ 7. a None item


@pytest.mark.parametrize("concurrency", [1, 4])
async def test_a_none_item_is_its_own_err_not_the_end_of_the_queue(
    sandbox: Sandbox, core: AtomaCore, concurrency: int
) -> None:
    """None was the queue's end marker: one worker stopped at it (concurrency 1 hung, more
    workers dropped it and every item after it that the stopped worker would have taken)."""
    items: list[Any] = [chat_item(1), None, chat_item(2), None, chat_item(3)]
    results = await asyncio.wait_for(collect(batch_run(core, items, concurrency=concurrency)), 10)
    assert len(results) == 5
    ok = sorted(r.custom_id for r in results if r.result.ok)
    assert ok == ["id-1", "id-2", "id-3"]
    bad = [r for r in results if not r.result.ok]
    assert len(bad) == 2
    for result in bad:
        assert isinstance(result.result.error, errors.InvalidRequestError)
        assert "NoneType" in str(result.result.error) and result.attempts == 0


# ------------------------------------------------------------------ 14. a 429 for ever in a batch job


@pytest.mark.parametrize("max_retries", [0, 1, 4])
async def test_a_429_for_ever_honours_max_retries_per_item(sandbox: Sandbox, max_retries: int) -> None:
    sandbox.script(faults.status(429, headers={"retry-after-ms": "1"}, times=None))
    retries = RetryConfig(max_retries=max_retries)
    async with AtomaCore(TOKEN, sandbox.url) as core:
        results = await asyncio.wait_for(
            collect(
                batch_run(core, [chat_item(i) for i in range(3)], options=RequestOptions(retries=retries))
            ),
            20,
        )
    assert len(results) == 3
    for result in results:
        assert isinstance(result.result.error, errors.RateLimitError)
        assert result.attempts == max_retries + 1
    assert len(sandbox.requests) == 3 * (max_retries + 1)


async def test_a_429_for_ever_ends_the_job_within_the_retry_budget(sandbox: Sandbox) -> None:
    """Without Retry-After every 429 pauses the job 1 s: 5 items took 50 s (11 tries each,
    whatever the settings). With a 1.5 s elapsed budget the job ends in about that."""
    sandbox.script(faults.status(429, times=None))
    retries = RetryConfig(max_retries=100, backoff=BackoffStrategy(max_elapsed_time=1_500))
    async with AtomaCore(TOKEN, sandbox.url) as core:
        started = time.monotonic()
        results = await asyncio.wait_for(
            collect(
                batch_run(core, [chat_item(i) for i in range(5)], options=RequestOptions(retries=retries))
            ),
            15,
        )
        elapsed = time.monotonic() - started
    assert all(isinstance(r.result.error, errors.RateLimitError) for r in results) and len(results) == 5
    assert all(r.attempts <= 3 for r in results)  # a 1 s pause per 429, 1.5 s of budget
    assert elapsed < 6  # generous for a loaded machine; it was 50 s


# ------------------------------------------------------------------ 8. deeply nested JSON

DEEP = b"[" * 200_000 + b"]" * 200_000  # msgspec raises RecursionError decoding it, typed or not
CHUNK = (
    b'{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,'
    b'"delta":{"role":"assistant","content":"hi"},"finish_reason":null}]}'
)
DEEP_CHUNK = CHUNK[:-1] + b',"extra":' + DEEP + b"}"  # an unknown field: skipping it recurses too


def deep_app(mode: dict[str, str]) -> web.Application:
    """Answers every route with deeply nested JSON, in the shape `mode["kind"]` says."""

    async def answer(request: web.Request) -> web.StreamResponse:
        kind = mode["kind"]
        if kind == "body":  # a 200 whose JSON nests 200k levels deep (an unknown field)
            return web.Response(
                body=b'{"data":[],"object":"list","x":' + DEEP + b"}", content_type="application/json"
            )
        if kind == "error":  # an error status with such a body
            return web.Response(status=400, body=DEEP, content_type="application/json")
        if kind == "json_for_stream":  # a stream request answered with a JSON body
            return web.Response(body=DEEP, content_type="application/json")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        if kind == "stream_later":
            await resp.write(b"data: " + CHUNK + b"\n\n")
        if kind == "error_event":
            await resp.write(b"data: " + CHUNK + b"\n\nevent: error\ndata: " + DEEP + b"\n\n")
        else:
            await resp.write(b"data: " + DEEP_CHUNK + b"\n\n")
        await resp.write_eof()
        return resp

    app = web.Application(client_max_size=1 << 20)
    app.router.add_route("*", "/{tail:.*}", answer)
    return app


@pytest.fixture
async def deep_server() -> AsyncIterator[tuple[str, dict[str, str]]]:
    mode = {"kind": "body"}
    async with serve_app(deep_app(mode)) as url:
        yield url, mode


def call_of(name: str) -> Callable[[AtomaCore], Awaitable[Any]]:
    chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    calls: dict[str, Callable[[AtomaCore], Awaitable[Any]]] = {
        "chat_create": lambda core: funcs.chat_create(core, chat),
        "completions_create": lambda core: funcs.completions_create(core, {"model": "m", "prompt": "hi"}),
        "embeddings_create": lambda core: funcs.embeddings_create(core, {"model": "m", "input": "hi"}),
        "images_generate": lambda core: funcs.images_generate(core, {"model": "m", "prompt": "a cat"}),
        "models_list": lambda core: funcs.models_list(core),
        "open_router_models_list": lambda core: funcs.open_router_models_list(core),
        "nodes_create_lock": lambda core: funcs.nodes_create_lock(core, {"model": "m"}),
        "health": lambda core: funcs.health(core),
    }
    return calls[name]


NON_STREAM = [
    "chat_create",
    "completions_create",
    "embeddings_create",
    "images_generate",
    "models_list",
    "open_router_models_list",
    "nodes_create_lock",
    "health",
]


@pytest.mark.parametrize("name", NON_STREAM)
async def test_a_deeply_nested_body_is_a_response_validation_error(
    deep_server: tuple[str, dict[str, str]], name: str
) -> None:
    url, _ = deep_server
    async with AtomaCore(TOKEN, url) as core:
        res = await call_of(name)(core)
    assert isinstance(res, Err) and type(res.error) is errors.ResponseValidationError, res
    assert "nested too deeply" in str(res.error)


@pytest.mark.parametrize("name", NON_STREAM)
async def test_a_deeply_nested_error_body_is_read_as_non_json(
    deep_server: tuple[str, dict[str, str]], name: str
) -> None:
    url, mode = deep_server
    mode["kind"] = "error"
    async with AtomaCore(TOKEN, url) as core:
        res = await call_of(name)(core)
    assert isinstance(res, Err) and type(res.error) is errors.BadRequestError, res
    assert res.error.status_code == 400 and res.error.message == "HTTP 400 Bad Request"


@pytest.mark.parametrize("kind", ["stream_first", "stream_later", "json_for_stream", "error_event"])
async def test_a_deeply_nested_stream_event_is_a_typed_error(
    deep_server: tuple[str, dict[str, str]], kind: str
) -> None:
    url, mode = deep_server
    mode["kind"] = kind
    chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    async with AtomaCore(TOKEN, url, retry_config=RetryConfig.none()) as core:
        res = await funcs.chat_create_stream(core, chat)
        if kind in ("stream_first", "json_for_stream"):  # before anything was handed out: an Err
            assert isinstance(res, Err) and type(res.error) is errors.ResponseValidationError, res
            return
        stream = res.unwrap()
        with pytest.raises(errors.AtomaError) as raised:
            async with stream:
                async for _ in stream:
                    pass
    if kind == "error_event":  # a named error event whose data cannot be decoded: the event's text
        assert isinstance(raised.value, errors.APIError)
    else:
        assert type(raised.value) is errors.ResponseValidationError
        assert "nested too deeply" in str(raised.value)
    assert stream.partial.choices[0].message.content == "hi"


# ------------------------------------------------------------------ 2, 3. the call's deadline covers everything


def fast_retries() -> RetryConfig:
    return RetryConfig(backoff=BackoffStrategy(initial_interval=10, max_interval=50, max_elapsed_time=5_000))


async def test_a_relock_runs_under_the_calls_deadline(sandbox: Sandbox) -> None:
    """A 423 after 0.7 s, then a lock that takes 3 s: with timeout_ms=1000 the call ended at
    ~1.7 s (the nested lock call got a deadline of its own)."""
    request = {"model": "sandbox-model", "messages": [{"role": "user", "content": "secret"}]}
    async with AtomaCore(TOKEN, sandbox.url, retry_config=fast_retries()) as core:
        (await funcs.confidential_chat_create(core, request)).unwrap()  # locked
        sandbox.reset()
        sandbox.script(faults.status(423, seconds=0.7), faults.delay(3))
        started = time.monotonic()
        res = await funcs.confidential_chat_create(core, request, RequestOptions(timeout_ms=1_000))
        elapsed = time.monotonic() - started
    assert isinstance(res, Err) and isinstance(res.error, errors.RequestTimeoutError), res
    assert res.error.phase == "total" and res.error.timeout == 1.0
    assert [r.path for r in sandbox.requests] == ["/v1/confidential/chat/completions", "/v1/nodes/lock"]
    assert 0.95 < elapsed < 1.4


HANG = 30.0


@pytest.mark.parametrize("point", ["before_request", "after_error"])
@pytest.mark.parametrize("deadline", ["total", "response"])
async def test_a_hung_attempt_hook_is_cut_at_the_deadline(
    sandbox: Sandbox, point: str, deadline: str
) -> None:
    """A before_request or after_error hook that hangs kept the call going past timeout_ms
    (still running after 8 s); after_success was cut at the deadline already."""
    cancelled: list[str] = []

    async def hang(context: HookContext) -> None:
        try:
            await asyncio.sleep(HANG)
        except asyncio.CancelledError:
            cancelled.append(context.operation_id)
            raise

    if point == "after_error":
        sandbox.script(faults.status(500, times=None))
    options = (
        RequestOptions(timeout_ms=500)
        if deadline == "total"
        else RequestOptions(timeouts=Timeouts(response=0.5))
    )
    async with AtomaCore(TOKEN, sandbox.url, retry_config=fast_retries()) as core:
        core.add_hooks(Hooks(**{point: hang}))  # type: ignore[arg-type]
        started = time.monotonic()
        res = await asyncio.wait_for(funcs.chat_create(core, CHAT, options), 10)
        elapsed = time.monotonic() - started
    assert isinstance(res, Err) and isinstance(res.error, errors.RequestTimeoutError), res
    assert res.error.phase == deadline and res.error.timeout == 0.5
    assert cancelled == ["chat_completions_create"]
    assert elapsed < 1.2


async def test_an_after_error_hook_after_the_deadline_gets_no_more_time(sandbox: Sandbox) -> None:
    """The attempt failed with the deadline itself (a server that never answers): a hanging
    after_error hook is cut at once, not given a fresh wait."""
    sandbox.script(faults.hang())
    seen: list[BaseException | None] = []

    async def hang(context: HookContext) -> None:
        seen.append(context.error)
        await asyncio.sleep(HANG)

    async with AtomaCore(TOKEN, sandbox.url) as core:
        core.add_hooks(Hooks(after_error=hang))
        started = time.monotonic()
        res = await asyncio.wait_for(funcs.chat_create(core, CHAT, RequestOptions(timeout_ms=500)), 10)
        elapsed = time.monotonic() - started
    assert isinstance(res, Err) and isinstance(res.error, errors.RequestTimeoutError), res
    assert res.error.phase == "total"
    assert len(seen) == 1 and isinstance(seen[0], errors.RequestTimeoutError)
    assert elapsed < 1.0


async def test_a_quick_hook_still_sees_the_attempts_failure(sandbox: Sandbox) -> None:
    """Only a hook that outlives the deadline is cut: the usual ones run as before."""
    sandbox.script(faults.status(500), faults.status(500))
    seen: list[tuple[str, int]] = []

    async def note(context: HookContext) -> None:
        await asyncio.sleep(0)
        seen.append((type(context.error).__name__, context.attempt))

    async with AtomaCore(TOKEN, sandbox.url, retry_config=fast_retries()) as core:
        core.add_hooks(Hooks(after_error=note))
        res = await funcs.chat_create(core, CHAT, RequestOptions(timeout_ms=5_000))
    assert res.ok
    assert seen == [("InternalServerError", 1), ("InternalServerError", 2)]


# ------------------------------------------------------------------ 9. the sync face inside a running loop


async def test_the_sync_face_inside_a_running_loop_warns_once_per_client() -> None:
    """It blocked the loop without a word (a deadlock until the read timeout, blamed on the
    network, when the server lived on that loop). A notebook runs its cells in a loop and must
    keep working: a warning, not a refusal."""
    loop = asyncio.get_running_loop()
    with sandbox_in_thread(token=TOKEN) as sandbox:
        for _ in range(2):  # each client warns once
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                with AtomaSyncSDK(TOKEN, sandbox.url) as sdk:
                    first = sdk.chat.create(**CHAT)
                    with sdk.chat.create_stream(**CHAT) as stream:
                        chunks = list(stream)
            assert first.choices[0].message.content and chunks  # it still works
            [warning] = [w for w in caught if issubclass(w.category, RuntimeWarning)]
            message = str(warning.message)
            assert "running event loop" in message and repr(loop) in message
            assert "use AtomaSDK and await" in message
            assert warning.filename == __file__  # the caller's line, not ours


async def test_the_sync_face_outside_a_loop_does_not_warn() -> None:
    def plain_thread() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with AtomaSyncSDK(TOKEN, sandbox.url) as sdk:
                sdk.chat.create(**CHAT)

    with sandbox_in_thread(token=TOKEN) as sandbox:
        await asyncio.to_thread(plain_thread)


# ------------------------------------------------------------------ 10. tracing never fails a call


class Raising(SpanProcessor):  # type: ignore[misc]
    """A span processor that raises where `where` says (a buggy exporter pipeline)."""

    def __init__(self, where: str) -> None:
        self.where = where

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        if self.where == "on_start":
            raise RuntimeError("processor broke in on_start")

    def on_end(self, span: Any) -> None:
        if self.where == "on_end":
            raise RuntimeError("processor broke in on_end")


@pytest.mark.parametrize("where", ["on_start", "on_end"])
async def test_a_span_processor_that_raises_never_fails_a_call(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    """A processor raising in on_start failed every call (UnexpectedClientError)."""
    provider = TracerProvider()
    provider.add_span_processor(Raising(where))
    async with AtomaCore(TOKEN, sandbox.url) as core:
        instrument(core, tracer_provider=provider)
        with caplog.at_level(logging.DEBUG, logger="atoma"):
            for _ in range(3):
                assert (await funcs.chat_create(core, CHAT)).unwrap().choices
                stream = (await funcs.chat_create_stream(core, CHAT)).unwrap()
                assert (await stream.collect()).unwrap().choices
    failures = [r for r in caplog.records if "OpenTelemetry instrumentation failed" in r.getMessage()]
    assert [r.levelno for r in failures][:1] == [logging.WARNING]
    assert sum(r.levelno == logging.WARNING for r in failures) == 1  # logged once
    assert failures[0].exc_info is not None and f"broke in {where}" in str(failures[0].exc_info[1])
    assert TOKEN not in caplog.text


# ------------------------------------------------------------------ 16. base64 embeddings are checked


async def test_base64_embeddings_from_the_sandbox_decode_to_its_floats(
    sandbox: Sandbox, core: AtomaCore
) -> None:
    request = {"model": "e", "input": ["a b", "c"], "dimensions": 16}
    floats = (await funcs.embeddings_create(core, request)).unwrap()
    packed = (await funcs.embeddings_create(core, {**request, "encoding_format": "base64"})).unwrap()
    for plain, b64 in zip(floats.data, packed.data):
        assert isinstance(b64.embedding, str) and isinstance(plain.embedding, list)
        values = struct.unpack("<16f", base64.b64decode(b64.embedding))
        assert values == pytest.approx(plain.embedding, abs=1e-6)


@pytest.mark.parametrize(
    ("embedding", "why"),
    [
        ("not base64 at all!", "not valid base64"),
        ("AAAA====", "not valid base64"),  # bad padding
        ("AAA=", "2 bytes is not whole float32 values"),
        ("AAAAAA==", None),  # one float32: fine
    ],
)
async def test_a_base64_embedding_that_is_not_float32s_is_a_response_validation_error(
    embedding: str, why: str | None
) -> None:
    """A garbage string came back as is."""

    async def answer(request: web.Request) -> web.Response:
        data = [{"object": "embedding", "embedding": embedding, "index": 0}]
        return web.json_response({"object": "list", "model": "e", "data": data})

    app = web.Application()
    app.router.add_post("/v1/embeddings", answer)
    async with serve_app(app) as url, AtomaCore(TOKEN, url) as core:
        res = await funcs.embeddings_create(core, {"model": "e", "input": "x", "encoding_format": "base64"})
    if why is None:
        assert res.unwrap().data[0].embedding == embedding
        return
    assert isinstance(res, Err) and type(res.error) is errors.ResponseValidationError, res
    assert why in str(res.error) and "$.data[0]" in str(res.error)
