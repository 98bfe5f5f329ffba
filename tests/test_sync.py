"""`AtomaSyncSDK`: plain methods on one background loop, shared by threads; streams as `with` +
`for`; typed errors, deadlines, close and garbage collection leaving no thread, socket or
ResourceWarning behind. Sync tests: the sandbox runs on its own loop in a thread."""

from __future__ import annotations

import _thread
import asyncio
import gc
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from atoma_core import AtomaCore, BackoffStrategy, HookContext, Hooks, RetryConfig, Timeouts, errors
from atoma_core.models import ChatCompletionChunk, ChatCompletionResponse
from atoma_core.testing import Sandbox, faults
from atoma_funcs import AtomaSyncSDK

from .conftest import CHAT, STREAM_CHAT, TOKEN, acquired_connections, free_port

FAST = RetryConfig(backoff=BackoffStrategy(initial_interval=10, max_interval=50, max_elapsed_time=5_000))


def sync_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "atoma-sync"]


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """The sandbox on its own loop in a thread: these tests call from threads without a loop."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    sandbox = Sandbox(token=TOKEN)
    asyncio.run_coroutine_threadsafe(sandbox.start(), loop).result()
    yield sandbox
    asyncio.run_coroutine_threadsafe(sandbox.close(), loop).result()
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    loop.close()


@pytest.fixture
def sdk(sandbox: Sandbox) -> Iterator[AtomaSyncSDK]:
    before = len(sync_threads())
    with AtomaSyncSDK(TOKEN, sandbox.url, retry_config=FAST) as client:
        yield client
    gc.collect()  # a leaked stream would warn here, inside the test
    assert len(sync_threads()) == before


def pool_in_use(sdk: AtomaSyncSDK) -> int:
    """Connections handed out by the client's pool, read on its own loop."""

    async def count(core: AtomaCore) -> int:
        return acquired_connections(core)

    return sdk._thread.run(count(sdk.core))


def test_create_in_every_spelling(sdk: AtomaSyncSDK) -> None:
    resp = sdk.chat.create(CHAT)
    assert isinstance(resp, ChatCompletionResponse)
    assert resp.choices[0].message.content == "You said: hello there"
    assert resp.meta is not None and resp.meta.attempts == 1
    keywords = sdk.chat.create(model="m", messages=[{"role": "user", "content": "keywords"}])
    assert keywords.choices[0].message.content == "You said: keywords"
    openai_style = sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "oa"}])
    assert openai_style.choices[0].message.content == "You said: oa"
    assert sdk.health.check().message == "ok"
    assert sdk.completions.create(model="c", prompt="hi").choices[0].text == "You said: hi"


def test_errors_are_raised_typed(sdk: AtomaSyncSDK, sandbox: Sandbox) -> None:
    sandbox.script(faults.status(400))
    with pytest.raises(errors.BadRequestError) as bad:
        sdk.chat.create(CHAT)
    assert bad.value.status_code == 400 and bad.value.attempts == 1
    sandbox.script(faults.status(429, times=None))
    with pytest.raises(errors.RateLimitError) as limited:
        sdk.chat.create(CHAT)
    assert limited.value.attempts == 3
    assert len(sandbox.requests) == 4  # 1 + 3 attempts
    sandbox.reset()
    with pytest.raises(errors.InvalidRequestError):
        sdk.chat.create(messages=[])  # no model: refused before sending
    with pytest.raises(errors.InvalidRequestError, match="create_stream"):
        sdk.chat.create(CHAT | {"stream": True})
    with pytest.raises(TypeError):
        sdk.chat.create(CHAT, model="both")
    assert sandbox.requests == []  # the refusals sent nothing


def test_threads_share_one_client_and_its_connections(sdk: AtomaSyncSDK, sandbox: Sandbox) -> None:
    answers: dict[str, str | None] = {}
    failures: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(20):
                text = f"thread {n} call {i}"
                resp = sdk.chat.create(model="m", messages=[{"role": "user", "content": text}])
                answers[text] = resp.choices[0].message.content
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures
    assert len(answers) == 160 and all(v == f"You said: {k}" for k, v in answers.items())
    assert len(sync_threads()) == 1  # one loop thread served them all
    assert len({r.peer for r in sandbox.requests}) <= 8  # connections pooled, not one per call
    assert pool_in_use(sdk) == 0


def test_stream_with_and_for(sdk: AtomaSyncSDK, sandbox: Sandbox) -> None:
    pieces = []
    with sdk.chat.create_stream(STREAM_CHAT) as stream:
        for chunk in stream:
            assert isinstance(chunk, ChatCompletionChunk)
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
    assert "".join(pieces) == "You said: one two three four"
    assert stream.closed and stream.usage is not None and stream.usage.completion_tokens == 6
    assert stream.metrics.chunks == 9 and stream.request_id == "chatcmpl-000001"
    assert sandbox.requests[-1].json["stream"] is True
    assert pool_in_use(sdk) == 0


def test_stream_collect(sdk: AtomaSyncSDK) -> None:
    with sdk.chat.create_stream(model="m", messages=[{"role": "user", "content": "x y"}]) as stream:
        resp = stream.collect().unwrap()
    assert resp.choices[0].message.content == "You said: x y"
    assert resp.meta is not None and resp.meta.request_id == resp.id
    with sdk.chat.create_stream(STREAM_CHAT) as stream:
        first = next(iter(stream))
        assert first.choices[0].delta.role == "assistant"
        assert stream.collect().unwrap().choices[0].message.content == "You said: one two three four"


def test_break_inside_with_lets_a_later_loop_resume(sdk: AtomaSyncSDK) -> None:
    with sdk.chat.create_stream(STREAM_CHAT) as stream:
        seen = []
        for chunk in stream:
            seen.append(chunk)
            break
        rest = list(stream)  # resumes where the loop left off
    assert seen[0].choices[0].delta.role == "assistant"
    assert len(rest) == 8 and rest[-1].usage is not None
    assert stream.closed


def test_bare_for_and_break_closes_the_stream(sdk: AtomaSyncSDK) -> None:
    stream = sdk.chat.create_stream(STREAM_CHAT)
    for _ in stream:
        break
    assert stream.closed
    assert pool_in_use(sdk) == 0
    del stream
    gc.collect()  # no ResourceWarning (pytest turns one into an error)


def test_an_unclosed_stream_warns_and_is_closed(sdk: AtomaSyncSDK) -> None:
    stream = sdk.chat.create_stream(STREAM_CHAT)
    with pytest.warns(ResourceWarning, match="unclosed <SyncStream"):
        del stream
        gc.collect()
    deadline = time.monotonic() + 5
    while pool_in_use(sdk) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool_in_use(sdk) == 0


def test_a_failure_mid_stream_is_raised_with_the_partial_answer(sdk: AtomaSyncSDK, sandbox: Sandbox) -> None:
    sandbox.script(faults.truncate(after_chunks=3))
    with pytest.raises(errors.StreamTruncatedError) as caught, sdk.chat.create_stream(CHAT) as stream:
        for _ in stream:
            pass
    assert caught.value.partial.choices[0].message.content == "You said:"
    assert stream.closed and list(stream) == []
    sandbox.script(faults.truncate(after_chunks=3))
    with sdk.chat.create_stream(CHAT) as stream:
        failed = stream.collect()
    assert isinstance(failed.error, errors.StreamTruncatedError)


def test_deadlines_apply(sandbox: Sandbox) -> None:
    with AtomaSyncSDK(TOKEN, sandbox.url, timeouts=Timeouts(idle=0.2)) as sdk:
        sandbox.script(faults.stall(after_chunks=2))
        started = time.monotonic()
        with pytest.raises(errors.RequestTimeoutError) as idle, sdk.chat.create_stream(CHAT) as stream:
            for _ in stream:
                pass
        assert idle.value.phase == "idle" and time.monotonic() - started < 3
        sandbox.script(faults.hang())
        with pytest.raises(errors.RequestTimeoutError) as total:
            sdk.chat.create(CHAT, timeout=0.2)  # openai's keyword: the whole call's deadline
        assert total.value.phase == "total"


def test_close_is_idempotent_and_later_calls_are_refused(sandbox: Sandbox) -> None:
    before = len(sync_threads())
    sdk = AtomaSyncSDK(TOKEN, sandbox.url)
    assert len(sync_threads()) == before + 1
    sdk.close()  # idle: nothing was ever sent
    sdk.close()
    assert len(sync_threads()) == before
    with pytest.raises(errors.InvalidRequestError, match="closed"):
        sdk.chat.create(CHAT)


def test_close_closes_open_streams_and_fails_running_calls(sandbox: Sandbox) -> None:
    sdk = AtomaSyncSDK(TOKEN, sandbox.url, retry_config=RetryConfig.none())
    stream = sdk.chat.create_stream(STREAM_CHAT)
    outcome: list[BaseException] = []
    sandbox.script(faults.hang())
    caller = threading.Thread(target=lambda: _capture(outcome, lambda: sdk.chat.create(CHAT)))
    caller.start()
    while len(sandbox.requests) < 2:
        time.sleep(0.01)
    sdk.close()
    caller.join(timeout=10)
    assert stream.closed
    assert len(outcome) == 1 and isinstance(outcome[0], errors.APIConnectionError)
    assert "closed" in str(outcome[0])
    del stream
    gc.collect()


def _capture(outcome: list[BaseException], call: object) -> None:
    try:
        call()  # type: ignore[operator]
    except BaseException as exc:
        outcome.append(exc)


def test_keyboard_interrupt_while_waiting_cancels_the_call(sdk: AtomaSyncSDK, sandbox: Sandbox) -> None:
    sandbox.script(faults.hang())
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            sdk.chat.create(CHAT)
    finally:
        timer.cancel()
    deadline = time.monotonic() + 5
    while pool_in_use(sdk) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool_in_use(sdk) == 0  # the hung request was cancelled on the loop, its connection closed
    assert sdk.chat.create(CHAT).choices[0].message.content == "You said: hello there"


def test_a_dropped_client_stops_its_thread(sandbox: Sandbox) -> None:
    before = len(sync_threads())
    sdk = AtomaSyncSDK(TOKEN, sandbox.url)
    sdk.chat.create(CHAT)
    fast = sdk.with_options(max_retries=0)  # a clone shares the thread: it keeps it alive
    del sdk
    gc.collect()
    assert len(sync_threads()) == before + 1
    assert fast.chat.create(CHAT).choices
    del fast
    gc.collect()
    assert len(sync_threads()) == before


def test_calling_itself_from_a_hook_is_refused(sandbox: Sandbox) -> None:
    box: list[AtomaSyncSDK] = []

    def hook(ctx: HookContext) -> None:
        box[0].health.check()

    with AtomaSyncSDK(TOKEN, sandbox.url, hooks=Hooks(before_request=hook)) as sdk:
        box.append(sdk)
        with pytest.raises(errors.UnexpectedClientError) as caught:
            sdk.chat.create(CHAT)
    assert isinstance(caught.value.__cause__, errors.InvalidRequestError)
    assert "own loop thread" in str(caught.value.__cause__)


def test_warm_opens_the_connection_the_first_call_uses(sdk: AtomaSyncSDK, sandbox: Sandbox) -> None:
    sdk.warm()
    sdk.chat.create(CHAT)
    assert [r.path for r in sandbox.requests] == ["/health", "/v1/chat/completions"]
    assert sandbox.requests[0].peer == sandbox.requests[1].peer


def test_warm_against_a_dead_server_raises_typed() -> None:
    with (
        AtomaSyncSDK(TOKEN, f"http://127.0.0.1:{free_port()}") as sdk,
        pytest.raises(errors.APIConnectionError),
    ):
        sdk.warm()


def test_keyboard_interrupt_while_iterating_closes_the_stream(sdk: AtomaSyncSDK, sandbox: Sandbox) -> None:
    sandbox.script(faults.stall(after_chunks=2))
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt), sdk.chat.create_stream(CHAT) as stream:
            for _ in stream:
                pass
    finally:
        timer.cancel()
    assert stream.closed and pool_in_use(sdk) == 0


def test_both_faces_are_typed() -> None:
    """mypy --strict on tests/typecheck/faces.py: methods and results keep their types on both faces."""
    checked = Path(__file__).parent / "typecheck" / "faces.py"
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", str(checked)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


FORKED = """
import os, signal, sys
sys.path.insert(0, sys.argv[1])
from atoma_core.testing import sandbox_in_thread
from atoma_funcs import AtomaSyncSDK

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
with sandbox_in_thread() as sandbox:
    url = sandbox.url
    sdk = AtomaSyncSDK(server_url=url)  # built before the fork, as with gunicorn --preload
    assert sdk.chat.create(CHAT).choices[0].message.content == "You said: hi"
    child = os.fork()
    if child == 0:
        signal.alarm(30)  # a child that hangs must not outlive the test
        ok = sdk.chat.create(CHAT).choices[0].message.content == "You said: hi"
        sdk.close()
        os._exit(0 if ok else 1)
    _, status = os.waitpid(child, 0)
    assert sdk.chat.create(CHAT).choices  # the parent's client is untouched
    sdk.close()
print("child exit", os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_its_own_loop_thread() -> None:
    root = str(Path(__file__).resolve().parent.parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATOMASDK_")}
    proc = subprocess.run(
        [sys.executable, "-c", FORKED, root], capture_output=True, text=True, timeout=60, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "child exit 0"


def test_every_sub_client_method_has_both_faces(sandbox: Sandbox) -> None:
    """A sub-client added to `_Client` appears on both clients; each of its public `async def`s
    must be marked `@api` / `@api_stream`, or the sync client would hand out coroutines."""
    import inspect

    from atoma_funcs import AtomaSDK
    from atoma_funcs._faces import Resource
    from atoma_funcs.sdk import _Client

    with AtomaSyncSDK(TOKEN, sandbox.url) as sync_sdk:
        async_sdk = AtomaSDK(core=sync_sdk.core)
        names = [n for n in _Client.__slots__ if isinstance(getattr(sync_sdk, n, None), Resource)]
        assert {"chat", "completions", "embeddings", "images", "models", "health", "nodes"} <= set(names)
        for name in names:
            assert type(getattr(async_sdk, name)) is type(getattr(sync_sdk, name))
            for cls in type(getattr(sync_sdk, name)).__mro__:
                for attr, value in vars(cls).items():
                    if not attr.startswith("_"):
                        assert not inspect.iscoroutinefunction(value), f"{cls.__name__}.{attr}: add @api"


def test_reading_metrics_and_usage_while_iterating_keeps_the_answer_exact() -> None:
    """`metrics`, `usage` and `partial` fold the chunks handed out so far into the answer; read
    from the caller's thread while the loop thread hands chunks out, that must not race (it did:
    chunks folded twice or lost). Many events per read, and a tiny switch interval, make the
    race near certain if it exists."""
    import msgspec
    from aiohttp import web

    from .conftest import serve_app

    def chunk(content: str | None = None, finish: str | None = None) -> bytes:
        choice = {
            "index": 0,
            "delta": {} if content is None else {"content": content},
            "finish_reason": finish,
        }
        return b"data: " + msgspec.json.encode({"id": "c1", "model": "m", "choices": [choice]}) + b"\n\n"

    writes, per_write = 200, 40

    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for _ in range(writes):
            await response.write(chunk("x") * per_write)
            await asyncio.sleep(0)
        await response.write(chunk(finish="stop"))
        return response

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    served = serve_app(app)
    url = asyncio.run_coroutine_threadsafe(served.__aenter__(), loop).result()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with AtomaSyncSDK(TOKEN, url) as client, client.chat.create_stream(STREAM_CHAT) as stream:
            seen = 0
            for _ in stream:
                seen += 1
                assert stream.metrics.chunks >= seen  # the pump reads ahead of the loop here
                assert stream.usage is None
            content = stream.partial.choices[0].message.content
        assert seen == writes * per_write + 1 and content == "x" * (writes * per_write)
        assert stream.metrics.chunks == seen  # read after the client closed: the stream is closed
    finally:
        sys.setswitchinterval(interval)
        asyncio.run_coroutine_threadsafe(served.__aexit__(None, None, None), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


def test_the_last_three_operations_on_the_sync_face(sdk: AtomaSyncSDK, sandbox: Sandbox) -> None:
    """`confidential_completions.create` / `.create_stream` and `nodes.create` block like the rest."""
    done = sdk.confidential_completions.create(model="m", prompt="a b")
    assert done.choices[0].text == "You said: a b"
    with sdk.confidential_completions.create_stream(model="m", prompt="a b") as stream:
        text = "".join(chunk.choices[0].text for chunk in stream if chunk.choices)
    assert text == "You said: a b" and stream.usage is not None
    node = {"data": {"node_small_id": 1, "public_address": "https://n.example", "country": "FR"}, "signature": "c2ln"}
    assert sdk.nodes.create(node).message == "Success"
    assert [r.path for r in sandbox.requests if r.path != "/v1/nodes/lock"] == [
        "/v1/confidential/completions",
        "/v1/confidential/completions",
        "/v1/nodes",
    ]
    assert pool_in_use(sdk) == 0
