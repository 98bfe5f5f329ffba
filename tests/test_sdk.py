"""The bundled client `AtomaSDK`: create, create_stream, typed errors, context manager, laziness."""

from __future__ import annotations

import subprocess
import sys

import pytest

from atoma_core import AtomaCore, RequestOptions, RetryConfig, errors
from atoma_core.models import ChatCompletionRequest, ChatCompletionResponse, UserMessage
from atoma_core.testing import Sandbox, faults
from atoma_funcs import AtomaSDK

from .conftest import CHAT, TOKEN, free_port


@pytest.fixture
async def sdk(core: AtomaCore) -> AtomaSDK:
    return AtomaSDK(core=core)


async def test_create_with_a_dict(sdk: AtomaSDK) -> None:
    resp = await sdk.chat.create(CHAT)
    assert isinstance(resp, ChatCompletionResponse)
    assert resp.choices[0].message.content == "You said: hello there"
    assert resp.meta is not None and resp.meta.attempts == 1


async def test_create_with_keywords_like_openai(sdk: AtomaSDK, sandbox: Sandbox) -> None:
    resp = await sdk.chat.create(
        model="m", messages=[{"role": "user", "content": "keyword style"}], max_tokens=2
    )
    assert resp.choices[0].message.content == "You said:"
    assert resp.choices[0].finish_reason == "length"
    assert sandbox.requests[-1].json["max_tokens"] == 2


async def test_create_with_a_struct_and_options(sdk: AtomaSDK, sandbox: Sandbox) -> None:
    request = ChatCompletionRequest(model="m", messages=[UserMessage(content="typed")])
    resp = await sdk.chat.create(request, RequestOptions(headers={"X-Trace": "abc"}))
    assert resp.choices[0].message.content == "You said: typed"
    assert sandbox.requests[-1].headers["X-Trace"] == "abc"


async def test_positional_and_keywords_together_is_a_type_error(sdk: AtomaSDK) -> None:
    with pytest.raises(TypeError):
        await sdk.chat.create(CHAT, model="other")
    with pytest.raises(TypeError):
        await sdk.chat.create_stream(CHAT, model="other")


async def test_create_stream(sdk: AtomaSDK, sandbox: Sandbox) -> None:
    pieces = []
    async with await sdk.chat.create_stream(CHAT) as stream:
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
    assert "".join(pieces) == "You said: hello there"
    assert stream.closed
    assert stream.usage is not None and stream.usage.completion_tokens == 4
    assert sandbox.requests[-1].json["stream"] is True


async def test_create_stream_keywords_and_collect(sdk: AtomaSDK) -> None:
    async with await sdk.chat.create_stream(model="m", messages=[{"role": "user", "content": "x y"}]) as s:
        resp = (await s.collect()).unwrap()
    assert resp.choices[0].message.content == "You said: x y"
    assert resp.meta is not None and resp.meta.request_id == resp.id


async def test_stream_metrics_after_a_retry(sdk: AtomaSDK, sandbox: Sandbox) -> None:
    sandbox.script(faults.status(503))
    async with await sdk.chat.create_stream(CHAT) as stream:
        resp = (await stream.collect()).unwrap()
    metrics = stream.metrics
    assert metrics.attempts == 2
    assert metrics.chunks == 7  # role, 4 tokens, finish, usage
    assert metrics.time_to_first_token is not None and 0 < metrics.time_to_first_token <= metrics.elapsed
    assert resp.usage is not None and metrics.completion_tokens == resp.usage.completion_tokens
    assert metrics.tokens_per_second is not None and metrics.tokens_per_second > 0


@pytest.mark.parametrize(
    ("fault", "error_type", "status"),
    [
        (faults.status(400), errors.BadRequestError, 400),
        (faults.status(402), errors.InsufficientBalanceError, 402),
        (faults.status(404), errors.NotFoundError, 404),
        (faults.status(429, times=None), errors.RateLimitError, 429),
        (faults.status(503, times=None), errors.InternalServerError, 503),
    ],
)
async def test_create_raises_the_typed_error(
    sdk: AtomaSDK, sandbox: Sandbox, fault: faults.Fault, error_type: type[errors.APIError], status: int
) -> None:
    sandbox.script(fault)
    with pytest.raises(error_type) as caught:
        await sdk.chat.create(CHAT)
    assert type(caught.value) is error_type
    assert caught.value.status_code == status


async def test_retried_errors_report_their_attempts(sdk: AtomaSDK, sandbox: Sandbox) -> None:
    sandbox.script(faults.status(503, times=None))
    with pytest.raises(errors.InternalServerError) as caught:
        await sdk.chat.create(CHAT)
    assert caught.value.attempts == 3


async def test_authentication_error_without_leaking_the_token(sandbox: Sandbox) -> None:
    async with AtomaSDK("sk-wrong-secret-value", sandbox.url) as sdk:
        with pytest.raises(errors.AuthenticationError) as caught:
            await sdk.chat.create(CHAT)
        assert "sk-wrong-secret-value" not in repr(sdk)
    assert caught.value.status_code == 401
    assert "sk-wrong-secret-value" not in f"{caught.value} {caught.value!r} {caught.value.body}"


async def test_invalid_request_is_raised_before_sending(sdk: AtomaSDK, sandbox: Sandbox) -> None:
    with pytest.raises(errors.InvalidRequestError):
        await sdk.chat.create({"model": "m"})
    with pytest.raises(errors.InvalidRequestError):
        await sdk.chat.create(model="m", messages=[], temprature=0.5)  # typo: refused, not dropped
    assert sandbox.requests == []


async def test_connection_error() -> None:
    async with AtomaSDK(TOKEN, f"http://127.0.0.1:{free_port()}", retry_config=RetryConfig.none()) as sdk:
        with pytest.raises(errors.APIConnectionError):
            await sdk.chat.create(CHAT)
        with pytest.raises(errors.APIConnectionError):
            await sdk.chat.create_stream(CHAT)


async def test_stream_error_before_start_raises_from_create_stream(sdk: AtomaSDK, sandbox: Sandbox) -> None:
    sandbox.script(faults.status(401))
    with pytest.raises(errors.AuthenticationError):
        await sdk.chat.create_stream(CHAT)


async def test_stream_error_mid_stream_raises_from_iteration(sdk: AtomaSDK, sandbox: Sandbox) -> None:
    sandbox.script(faults.truncate(after_chunks=3))
    stream = await sdk.chat.create_stream(CHAT)
    with pytest.raises(errors.StreamTruncatedError) as caught:
        async with stream:
            async for _ in stream:
                pass
    assert stream.closed
    assert caught.value.partial is not None
    assert caught.value.partial.choices[0].message.content == "You said:"


async def test_context_manager_closes_the_session(sandbox: Sandbox) -> None:
    async with AtomaSDK(TOKEN, sandbox.url) as sdk:
        await sdk.chat.create(CHAT)
        session = await sdk.core.session()
        assert not session.closed
    assert session.closed
    await sdk.close()  # idempotent


async def test_close_then_reuse_opens_a_new_session(sandbox: Sandbox) -> None:
    sdk = AtomaSDK(TOKEN, sandbox.url)
    await sdk.chat.create(CHAT)
    first = await sdk.core.session()
    await sdk.close()
    assert first.closed
    await sdk.chat.create(CHAT)
    assert not (await sdk.core.session()).closed
    await sdk.close()


async def test_token_from_the_environment(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATOMASDK_BEARER_AUTH", TOKEN)
    async with AtomaSDK(server_url=sandbox.url) as sdk:
        resp = await sdk.chat.create(CHAT)
    assert resp.choices[0].message.content == "You said: hello there"


async def test_core_kwargs_are_passed_to_the_core() -> None:
    sdk = AtomaSDK("t", "http://example.invalid/v1/", retry_config=RetryConfig.none(), max_body_size=10)
    assert sdk.core.server_url == "http://example.invalid"
    assert sdk.core.retry_config.enabled is False
    assert sdk.core.max_body_size == 10


async def test_shared_core(core: AtomaCore) -> None:
    sdk = AtomaSDK(core=core)
    assert sdk.core is core
    with pytest.raises(TypeError):
        AtomaSDK("token", core=core)
    with pytest.raises(TypeError):
        AtomaSDK(core=core, max_body_size=1)


def test_public_names_have_docstrings() -> None:
    from atoma_funcs import sdk as module

    for obj in (module, AtomaSDK, module.Chat, AtomaSDK.close, module.Chat.create, module.Chat.create_stream):
        assert obj.__doc__ and obj.__doc__.strip(), obj


def test_importing_the_sdk_loads_no_request_or_stream_code() -> None:
    code = (
        "import sys, atoma_funcs\n"
        "atoma_funcs.AtomaSDK('t')\n"
        "loaded = [m for m in ('atoma_core._request', 'atoma_core._stream', 'aiohttp',\n"
        "          'atoma_funcs._chat', 'atoma_core.testing') if m in sys.modules]\n"
        "print(loaded)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
