"""Confidential compute end to end over loopback HTTP: the sandbox plays the node (its own X25519
key, opens sealed requests, seals answers and events). Locks, re-locks on 423/425, a fresh
ciphertext per attempt, tampering and hash failures, streams with usage, and no secret leaks."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest

from atoma_core import AtomaCore, ChatCompletionStream, CompletionStream, RequestOptions, RetryConfig, errors
from atoma_core.models import (
    ChatCompletionResponse,
    CompletionResponse,
    EmbeddingResponse,
    ImageGenerationResponse,
)
from atoma_core.testing import Sandbox, faults
from atoma_funcs import (
    AtomaSDK,
    chat_create,
    completions_create,
    confidential_chat_create,
    confidential_chat_create_stream,
    confidential_completions_create,
    confidential_completions_create_stream,
    confidential_embeddings_create,
    confidential_images_generate,
)

from .conftest import CHAT, STREAM_CHAT, TOKEN, acquired_connections

SECRET = "my secret prompt about the merger"
REQUEST = {"model": "sandbox-model", "messages": [{"role": "user", "content": SECRET}]}


def confidential_posts(sandbox: Sandbox) -> list[dict[str, object]]:
    return [r.json for r in sandbox.requests if r.path.startswith("/v1/confidential/")]


def locks(sandbox: Sandbox) -> int:
    return sum(r.path == "/v1/nodes/lock" for r in sandbox.requests)


@pytest.fixture
async def locked(core: AtomaCore, sandbox: Sandbox) -> AtomaCore:
    """A core that holds a node lock already, so scripted faults hit the confidential request."""
    (await confidential_chat_create(core, REQUEST)).unwrap()
    sandbox.reset()
    return core


async def test_chat_round_trip_is_encrypted_on_the_wire(core: AtomaCore, sandbox: Sandbox) -> None:
    plain = (await chat_create(core, REQUEST)).unwrap()
    resp = (await confidential_chat_create(core, REQUEST)).unwrap()
    assert isinstance(resp, ChatCompletionResponse)
    assert resp.choices[0].message.content == plain.choices[0].message.content == f"You said: {SECRET}"
    assert resp.usage is not None and resp.usage.total_tokens == plain.usage.total_tokens  # type: ignore[union-attr]
    assert resp.meta is not None and resp.meta.attempts == 1
    lock, sealed = sandbox.requests[-2], sandbox.requests[-1]
    assert lock.path == "/v1/nodes/lock" and lock.json == {"model": "sandbox-model"}
    assert sealed.path == "/v1/confidential/chat/completions"
    assert SECRET.encode() not in sealed.raw and b"messages" not in sealed.raw
    body = sealed.json
    assert body["model_name"] == "sandbox-model" and body["node_dh_public_key"] == sandbox.node.public_key  # type: ignore[union-attr]
    assert body["stream"] is False and body["stack_small_id"] > 0


async def test_a_lock_is_reused_but_every_request_gets_fresh_keys(core: AtomaCore, sandbox: Sandbox) -> None:
    for _ in range(3):
        (await confidential_chat_create(core, REQUEST)).unwrap()
    assert locks(sandbox) == 1
    sent = confidential_posts(sandbox)
    for field in ("client_dh_public_key", "salt", "nonce", "ciphertext"):
        assert len({s[field] for s in sent}) == 3, field


async def test_embeddings_and_images(core: AtomaCore, sandbox: Sandbox) -> None:
    emb = (await confidential_embeddings_create(core, {"model": "e", "input": ["a b", "c"]})).unwrap()
    assert isinstance(emb, EmbeddingResponse) and len(emb.data) == 2 and len(emb.data[0].embedding) == 8
    img = (
        await confidential_images_generate(core, {"model": "i", "prompt": "a cat", "size": "64x32", "n": 2})
    ).unwrap()
    assert isinstance(img, ImageGenerationResponse) and len(img.data) == 2
    sent = confidential_posts(sandbox)
    assert [s["model_name"] for s in sent] == ["e", "i"]
    assert "num_compute_units" not in sent[0] and sent[1]["num_compute_units"] == 2 * 64 * 32
    assert locks(sandbox) == 2  # one per model


async def test_stream_decrypts_every_event_and_keeps_usage(core: AtomaCore, sandbox: Sandbox) -> None:
    whole = (await confidential_chat_create(core, STREAM_CHAT)).unwrap()
    stream = (await confidential_chat_create_stream(core, STREAM_CHAT)).unwrap()
    assert isinstance(stream, ChatCompletionStream)
    pieces = []
    async with stream:
        async for chunk in stream:
            if chunk.choices:
                pieces.append(chunk.choices[0].delta.content or "")
    assert "".join(pieces) == whole.choices[0].message.content
    assert stream.usage is not None and stream.usage.total_tokens == whole.usage.total_tokens  # type: ignore[union-attr]
    assert stream.metrics.time_to_first_token is not None
    assert confidential_posts(sandbox)[-1]["stream"] is True
    done = (await (await confidential_chat_create_stream(core, STREAM_CHAT)).unwrap().collect()).unwrap()
    assert done.choices[0].message.content == whole.choices[0].message.content and done.usage is not None
    assert acquired_connections(core) == 0


async def test_completions_plain_and_streamed_are_encrypted(core: AtomaCore, sandbox: Sandbox) -> None:
    request = {"model": "sandbox-model", "prompt": SECRET, "max_tokens": 64}
    plain = (await completions_create(core, request)).unwrap()
    resp = (await confidential_completions_create(core, request)).unwrap()
    assert isinstance(resp, CompletionResponse) and resp.choices[0].text == plain.choices[0].text
    assert SECRET in resp.choices[0].text and resp.meta is not None and resp.meta.attempts == 1
    stream = (await confidential_completions_create_stream(core, request)).unwrap()
    assert isinstance(stream, CompletionStream)
    pieces = []
    async with stream:
        async for chunk in stream:
            if chunk.choices:
                pieces.append(chunk.choices[0].text)
    assert "".join(pieces) == plain.choices[0].text
    assert stream.usage is not None and stream.usage.total_tokens == plain.usage.total_tokens  # type: ignore[union-attr]
    sealed = [r for r in sandbox.requests if r.path == "/v1/confidential/completions"]
    assert len(sealed) == 2 and locks(sandbox) == 1
    for sent in sealed:
        assert SECRET.encode() not in sent.raw and b"prompt" not in sent.raw
        assert sent.json["model_name"] == "sandbox-model" and sent.json["num_compute_units"] == 64
    assert [s.json["stream"] for s in sealed] == [False, True]
    assert acquired_connections(core) == 0


async def test_a_tampered_completion_event_keeps_what_was_decrypted(
    locked: AtomaCore, sandbox: Sandbox
) -> None:
    sandbox.script(faults.tamper(after_chunks=2))
    stream = (
        await confidential_completions_create_stream(locked, {"model": "sandbox-model", "prompt": "a b c"})
    ).unwrap()
    with pytest.raises(errors.StreamInterruptedError) as caught:
        async with stream:
            async for _ in stream:
                pass
    assert caught.value.partial.choices[0].text
    assert acquired_connections(locked) == 0


@pytest.mark.parametrize(("status", "code"), [(423, "LOCKED"), (425, "UNAVAILABLE_STACK")])
async def test_locked_or_unavailable_stack_relocks_and_reseals(
    locked: AtomaCore, sandbox: Sandbox, status: int, code: str
) -> None:
    core = locked
    sandbox.script(faults.status(status))
    resp = (await confidential_chat_create(core, REQUEST)).unwrap()
    assert resp.meta is not None and resp.meta.attempts == 2
    assert [r.path for r in sandbox.requests] == [
        "/v1/confidential/chat/completions",  # refused: 423 / 425
        "/v1/nodes/lock",  # a new lock
        "/v1/confidential/chat/completions",
    ]
    first, second = confidential_posts(sandbox)
    assert first["stack_small_id"] != second["stack_small_id"]
    assert first["ciphertext"] != second["ciphertext"]


async def test_still_locked_after_the_retries_is_a_locked_error(locked: AtomaCore, sandbox: Sandbox) -> None:
    ok = faults.delay(0)  # the re-lock requests in between succeed
    sandbox.script(faults.status(423), ok, faults.status(423), ok, faults.status(423))
    res = await confidential_chat_create(locked, REQUEST)
    assert isinstance(res.error, errors.LockedError) and res.error.code == "LOCKED"
    assert res.error.attempts == 3 and locks(sandbox) == 2  # a new lock before each resend


async def test_423_is_not_retried_on_plain_routes(core: AtomaCore, sandbox: Sandbox) -> None:
    sandbox.script(faults.status(425))
    res = await chat_create(core, CHAT)
    assert isinstance(res.error, errors.TooEarlyError) and res.error.attempts == 1


async def test_a_5xx_retry_keeps_the_lock_and_reseals(locked: AtomaCore, sandbox: Sandbox) -> None:
    sandbox.script(faults.status(503))
    resp = (await confidential_chat_create(locked, REQUEST)).unwrap()
    assert resp.meta is not None and resp.meta.attempts == 2 and locks(sandbox) == 0
    first, second = confidential_posts(sandbox)
    assert first["stack_small_id"] == second["stack_small_id"] and first["ciphertext"] != second["ciphertext"]


@pytest.mark.parametrize(("fault", "reason"), [(faults.tamper(), "tag"), (faults.wrong_hash(), "hash")])
async def test_a_spoiled_answer_is_a_typed_error(
    locked: AtomaCore, sandbox: Sandbox, fault: faults.Fault, reason: str
) -> None:
    sandbox.script(fault)
    res = await confidential_chat_create(locked, REQUEST)
    assert isinstance(res.error, errors.ConfidentialComputeError)
    assert isinstance(res.error, errors.ResponseValidationError) and res.error.reason == reason
    assert SECRET not in str(res.error) and res.error.attempts == 1


async def test_a_tampered_event_mid_stream_keeps_what_was_decrypted(
    locked: AtomaCore, sandbox: Sandbox
) -> None:
    core = locked
    sandbox.script(faults.tamper(after_chunks=3))
    stream = (await confidential_chat_create_stream(core, STREAM_CHAT)).unwrap()
    with pytest.raises(errors.StreamInterruptedError) as caught:
        async with stream:
            async for _ in stream:
                pass
    assert "could not be opened" in caught.value.message
    assert caught.value.partial.choices[0].message.content == "You said:"  # events 0-2: role, "You", " said:"
    assert acquired_connections(core) == 0


async def test_a_spoiled_first_event_is_an_err(locked: AtomaCore, sandbox: Sandbox) -> None:
    core = locked
    sandbox.script(faults.wrong_hash(after_chunks=0))
    res = await confidential_chat_create_stream(core, STREAM_CHAT)
    assert isinstance(res.error, errors.ConfidentialComputeError) and res.error.reason == "hash"
    assert acquired_connections(core) == 0


async def test_no_node_for_the_model_fails_before_sealing(core: AtomaCore, sandbox: Sandbox) -> None:
    sandbox.script(faults.status(503, times=3))
    res = await confidential_chat_create(core, REQUEST)
    assert isinstance(res.error, errors.InternalServerError) and res.error.status_code == 503
    assert [r.path for r in sandbox.requests] == ["/v1/nodes/lock"] * 3  # nothing sealed was sent


async def test_the_lock_follows_per_call_server_url(sandbox: Sandbox) -> None:
    async with Sandbox(token=TOKEN) as other, AtomaCore(TOKEN, sandbox.url) as core:
        resp = await confidential_chat_create(core, REQUEST, RequestOptions(server_url=other.url))
        assert resp.ok and [r.path for r in other.requests] == [
            "/v1/nodes/lock",
            "/v1/confidential/chat/completions",
        ]
        assert sandbox.requests == []


async def test_secrets_reach_no_log_and_no_repr(
    locked: AtomaCore, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="atoma")
    sandbox.script(faults.status(423))
    stream = (await confidential_chat_create_stream(locked, REQUEST)).unwrap()
    async with stream:
        text = repr(stream)
        async for _ in stream:
            text += repr(stream) + repr(stream.partial.choices[0].message.content is not None)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "confidential_chat_completions_create_stream retry 1" in logged
    for secret in (SECRET, TOKEN, "You said"):
        assert secret not in logged and secret not in text


def test_without_cryptography_the_error_names_the_extra() -> None:
    code = (
        "import sys, asyncio\n"
        "sys.modules['cryptography'] = None  # as if the extra were not installed\n"
        "from atoma_core import AtomaCore\n"
        "from atoma_funcs import confidential_chat_create, chat_create\n"
        "core = AtomaCore('t', 'http://127.0.0.1:9')\n"
        "res = asyncio.run(confidential_chat_create(core, {'model': 'm', 'messages': []}))\n"
        "print(type(res.error).__name__, res.error.attempts, '|', res.error)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.startswith("MissingDependencyError 1 |")
    assert 'pip install "atoma-async[confidential]"' in out.stdout


def test_importing_the_confidential_functions_loads_no_cryptography() -> None:
    code = (
        "import sys, atoma_funcs; atoma_funcs.confidential_chat_create; print('cryptography' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"


@pytest.fixture
async def sdk(sandbox: Sandbox) -> AsyncIterator[AtomaSDK]:
    async with AtomaSDK(TOKEN, sandbox.url) as client:
        yield client


async def test_class_style(sdk: AtomaSDK, sandbox: Sandbox) -> None:
    resp = await sdk.confidential_chat.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert resp.choices[0].message.content == "You said: hi"
    async with await sdk.confidential_chat.create_stream(REQUEST) as stream:
        assert (await stream.collect()).unwrap().choices[0].message.content == f"You said: {SECRET}"
    assert "hi" in (await sdk.confidential_completions.create(model="m", prompt="hi")).choices[0].text
    async with await sdk.confidential_completions.create_stream(model="m", prompt="hi") as completion:
        assert "hi" in (await completion.collect()).unwrap().choices[0].text
    assert (await sdk.confidential_embeddings.create(model="e", input="x")).data
    assert (await sdk.confidential_images.generate(model="i", prompt="p")).data[0].url
    sandbox.script(faults.tamper())  # the lock is cached: this spoils the answer
    with pytest.raises(errors.ConfidentialComputeError):
        await sdk.confidential_chat.create(REQUEST)
    assert json.dumps(confidential_posts(sandbox)[0])  # plain JSON on the wire


async def test_a_batch_job_runs_confidential_completions(core: AtomaCore, sandbox: Sandbox) -> None:
    from atoma_funcs import batch_run

    items = [
        {
            "custom_id": str(i),
            "url": "/v1/confidential/completions",
            "body": {"model": "m", "prompt": f"p{i}"},
        }
        for i in range(3)
    ]
    done = {r.custom_id: r.result.unwrap() async for r in batch_run(core, items, concurrency=2)}
    assert {k: v.choices[0].text for k, v in done.items()} == {str(i): f"You said: p{i}" for i in range(3)}
    assert len(confidential_posts(sandbox)) == 3


# ---------------------------------------------------------------- issue 26, items 11 and 12


async def test_a_replayed_event_ends_the_stream_and_keeps_what_came_before(
    locked: AtomaCore, sandbox: Sandbox
) -> None:
    """A proxy resending an event (the same nonce, under the same key) must not get it in twice."""
    sandbox.script(faults.replay(after_chunks=2))  # events: role, "You", " said:", " said:" again
    stream = (await confidential_chat_create_stream(locked, STREAM_CHAT)).unwrap()
    with pytest.raises(errors.StreamInterruptedError) as caught:
        async with stream:
            async for _ in stream:
                pass
    assert "replayed" in caught.value.message
    assert caught.value.partial.choices[0].message.content == "You said:"  # once, not twice
    assert acquired_connections(locked) == 0


async def test_a_replayed_completion_event_ends_the_stream(locked: AtomaCore, sandbox: Sandbox) -> None:
    sandbox.script(faults.replay(after_chunks=1))
    request = {"model": "sandbox-model", "prompt": "a b c"}
    stream = (await confidential_completions_create_stream(locked, request)).unwrap()
    with pytest.raises(errors.StreamInterruptedError):
        async with stream:
            async for _ in stream:
                pass
    assert caught_text(stream) == "You said:"  # " said:" once, not twice


def caught_text(stream: CompletionStream) -> str:
    return stream.partial.choices[0].text


PLAINTEXT = "the decrypted secret plaintext, not JSON"


def assert_no_plaintext(error: BaseException, secret: str = PLAINTEXT) -> None:
    """Neither the error, its message, its attributes nor anything it was raised from holds it."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        text = str(error) + repr(error) + repr(vars(error))
        assert secret not in text and secret.encode() not in getattr(error, "raw", b"")
        partial = getattr(error, "partial", None)
        assert partial is None or secret not in repr(partial)
        error = error.__cause__ or error.__context__  # type: ignore[assignment]


DEEP = '{"x": ' + "[" * 200_000 + "]" * 200_000 + ', "choices": []}'  # msgspec: RecursionError


@pytest.mark.parametrize(
    "text", [PLAINTEXT, '{"choices": "' + PLAINTEXT + '"}', '["' + PLAINTEXT + '"]', DEEP], ids=str.__len__
)
async def test_a_decrypted_answer_that_does_not_decode_reaches_no_error(
    locked: AtomaCore, sandbox: Sandbox, text: str
) -> None:
    sandbox.script(faults.sealed_text(text))
    res = await confidential_chat_create(locked, REQUEST)
    assert isinstance(res.error, errors.ResponseValidationError)
    assert not isinstance(res.error, errors.ConfidentialComputeError)  # it opened fine
    assert_no_plaintext(res.error)
    assert res.error.raw == b"" or b"ciphertext" in res.error.raw  # the sealed envelope at most
    assert "decrypted response" in res.error.message


async def test_an_answer_read_in_many_pieces_opens(locked: AtomaCore, sandbox: Sandbox) -> None:
    """A sealed answer that comes a few bytes at a time is joined into a bytearray and decrypted
    into it (`ResponseKey.open_answer`): the same answer as at once."""
    whole = (await confidential_chat_create(locked, REQUEST)).unwrap()
    sandbox.script(faults.trickle(0.0005, limit=40))
    pieces = (await confidential_chat_create(locked, REQUEST)).unwrap()
    assert pieces.choices[0].message.content == whole.choices[0].message.content == f"You said: {SECRET}"


@pytest.mark.parametrize("text", [PLAINTEXT, '{"choices": "' + PLAINTEXT + '"}', DEEP], ids=str.__len__)
@pytest.mark.parametrize("at", [0, 2])
async def test_a_decrypted_event_that_does_not_decode_reaches_no_error(
    locked: AtomaCore, sandbox: Sandbox, text: str, at: int
) -> None:
    sandbox.script(faults.sealed_text(text, after_chunks=at))
    res = await confidential_chat_create_stream(
        locked, STREAM_CHAT, RequestOptions(retries=RetryConfig(strategy="none"))
    )
    if res.ok:
        with pytest.raises(errors.AtomaError) as caught:
            async with res.value:
                async for _ in res.value:
                    pass
        error: BaseException = caught.value
    else:
        error = res.error
    assert isinstance(
        error, (errors.ResponseValidationError, errors.StreamInterruptedError, errors.APIConnectionError)
    )
    assert_no_plaintext(error)
    assert acquired_connections(locked) == 0
