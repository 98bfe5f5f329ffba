"""chat_create end to end over loopback HTTP against the sandbox: success, every error class,
auth sources, sessions, and secrets that must never leak."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest

from atoma_core import AtomaCore, Err, Hooks, Ok, RequestOptions, RetryConfig, Timeouts, errors
from atoma_core.models import ChatCompletionRequest, ChatCompletionResponse, UserMessage
from atoma_core.testing import Sandbox, faults
from atoma_funcs import chat_create

from .conftest import CHAT, TOKEN, free_port


async def test_ok_response_decodes_and_carries_meta(core: AtomaCore, sandbox: Sandbox) -> None:
    res = await chat_create(core, CHAT)
    assert res.ok
    resp = res.value
    assert isinstance(resp, ChatCompletionResponse)
    assert resp.choices[0].message.content == "You said: hello there"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None and resp.usage.total_tokens == resp.usage.prompt_tokens + 4
    assert resp.meta is not None and resp.meta.attempts == 1
    assert resp.meta.request_id == resp.id
    match res:
        case Ok(value=r):
            assert r is resp
        case _:
            pytest.fail("not Ok")


async def test_request_on_the_wire(core: AtomaCore, sandbox: Sandbox) -> None:
    await chat_create(core, ChatCompletionRequest(model="m", messages=[UserMessage(content="hi")]))
    sent = sandbox.requests[-1]
    assert sent.json == {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": False}
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["Accept"] == "application/json"
    assert sent.headers["User-Agent"].startswith("atoma-python/")


async def test_assistant_tool_call_with_null_content_is_sent_as_empty_string(
    core: AtomaCore, sandbox: Sandbox
) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    messages = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
    ]
    res = await chat_create(core, {"model": "m", "messages": messages})
    assert res.ok, res  # the sandbox, like the proxy, answers 400 to null content
    assert sandbox.requests[-1].json["messages"][1]["content"] == ""
    assert res.value.choices[0].message.content == "Tool said: 42"


async def test_null_content_on_a_user_message_is_the_servers_400(core: AtomaCore) -> None:
    res = await chat_create(core, {"model": "m", "messages": [{"role": "user", "content": None}]})
    assert not res.ok
    assert isinstance(res.error, errors.BadRequestError)
    assert res.error.code == "REQUEST_ERROR"
    assert "Missing or invalid message content" in res.error.message


STATUS_CLASSES = [
    (400, errors.BadRequestError),
    (401, errors.AuthenticationError),
    (402, errors.InsufficientBalanceError),
    (403, errors.PermissionDeniedError),
    (404, errors.NotFoundError),
    (422, errors.UnprocessableEntityError),
    (423, errors.LockedError),
    (425, errors.TooEarlyError),
    (429, errors.RateLimitError),
    (500, errors.InternalServerError),
    (503, errors.InternalServerError),
    (418, errors.APIError),
]


@pytest.mark.parametrize(("status", "cls"), STATUS_CLASSES)
async def test_each_status_maps_to_its_class(
    core: AtomaCore, sandbox: Sandbox, status: int, cls: type[errors.APIError]
) -> None:
    sandbox.script(faults.status(status, headers={"x-request-id": "req-7"}, times=None))
    res = await chat_create(core, CHAT, RequestOptions(retries=RetryConfig.none()))
    assert isinstance(res, Err)
    error = res.error
    assert type(error) is cls
    assert error.status_code == status
    assert error.request_id == "req-7"
    assert error.headers["X-Request-Id"] == "req-7"
    assert error.attempts == 1
    if status in (400, 401, 402, 429, 500, 503):  # the sandbox's Atoma envelope
        assert error.code and error.code.isupper()
        assert error.body.startswith('{"error"')


async def test_openai_envelope_parses(core: AtomaCore, sandbox: Sandbox) -> None:
    body = '{"error": {"message": "bad temp", "type": "invalid_request_error", "param": "temperature", "code": null}}'
    sandbox.script(faults.status(400, body=body, content_type="application/json"))
    res = await chat_create(core, CHAT)
    assert isinstance(res, Err) and isinstance(res.error, errors.BadRequestError)
    assert (res.error.message, res.error.type, res.error.param, res.error.code) == (
        "bad temp",
        "invalid_request_error",
        "temperature",
        None,
    )


@pytest.mark.parametrize(
    ("status", "body", "ctype", "cls"),
    [
        (502, "<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html", errors.InternalServerError),
        (415, "Expected request with `Content-Type: application/json`", "text/plain", errors.APIError),
        (500, "Traceback (most recent call last):\n  boom", "text/plain", errors.InternalServerError),
    ],
)
async def test_non_json_error_bodies_keep_raw_text(
    core: AtomaCore, sandbox: Sandbox, status: int, body: str, ctype: str, cls: type[errors.APIError]
) -> None:
    sandbox.script(faults.status(status, body=body, content_type=ctype, times=None))
    res = await chat_create(core, CHAT, RequestOptions(retries=RetryConfig.none()))
    assert isinstance(res, Err)
    assert type(res.error) is cls
    assert res.error.body == body
    assert res.error.message.startswith(f"HTTP {status}")


async def test_415_from_a_missing_content_type(core: AtomaCore, sandbox: Sandbox) -> None:
    res = await chat_create(core, CHAT, RequestOptions(headers={"Content-Type": "text/plain"}))
    assert isinstance(res, Err) and res.error.status_code == 415  # type: ignore[attr-defined]
    assert "Content-Type" in res.error.body  # type: ignore[attr-defined]


async def test_200_that_does_not_fit_is_response_validation_error(core: AtomaCore, sandbox: Sandbox) -> None:
    sandbox.script(faults.status(200, body='{"id": "x", "choices": "nope"}', content_type="application/json"))
    res = await chat_create(core, CHAT)
    assert isinstance(res, Err) and isinstance(res.error, errors.ResponseValidationError)
    assert res.error.raw == b'{"id": "x", "choices": "nope"}'
    assert "$.choices" in res.error.message


async def test_200_non_json_and_truncated_json(core: AtomaCore, sandbox: Sandbox) -> None:
    sandbox.script(faults.non_json(), faults.truncated_json())
    for _ in range(2):
        res = await chat_create(core, CHAT)
        assert isinstance(res, Err) and type(res.error) is errors.ResponseValidationError
        assert res.error.raw


async def test_decodes_unknown_fields_and_enum_values(core: AtomaCore, sandbox: Sandbox) -> None:
    body = (
        '{"id":"x","object":"chat.completion","created":1,"model":"m","response_hash":"h","signature":"s",'
        '"kv_transfer_params":null,"choices":[{"index":0,"finish_reason":"brand_new_reason",'
        '"stop_reason":128009,"message":{"role":"assistant","content":"hi","extra":1}}],'
        '"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2,'
        '"prompt_tokens_details":{"cached_tokens":0}}}'
    )
    sandbox.script(faults.status(200, body=body, content_type="application/json"))
    resp = (await chat_create(core, CHAT)).unwrap()
    assert resp.choices[0].finish_reason == "brand_new_reason"
    assert resp.choices[0].stop_reason == 128009
    assert resp.usage is not None and resp.usage.prompt_tokens_details is not None
    assert resp.usage.prompt_tokens_details.audio_tokens is None


async def test_connection_refused_is_api_connection_error() -> None:
    core = AtomaCore("t", f"http://127.0.0.1:{free_port()}", retry_config=RetryConfig.none())
    res = await chat_create(core, CHAT)
    await core.close()
    assert isinstance(res, Err) and type(res.error) is errors.APIConnectionError
    assert "cannot connect" in res.error.message


async def test_read_timeout_is_request_timeout_error(sandbox: Sandbox) -> None:
    core = AtomaCore(TOKEN, sandbox.url, timeouts=Timeouts(read=0.2), retry_config=RetryConfig.none())
    sandbox.script(faults.hang())
    res = await chat_create(core, CHAT)
    await core.close()
    assert isinstance(res, Err) and isinstance(res.error, errors.RequestTimeoutError)
    assert res.error.phase == "read"


@pytest.mark.parametrize(
    ("request_", "fragment"),
    [
        ({"messages": []}, "missing required field `model`"),
        ({"model": "m"}, "missing required field `messages`"),
        ({"model": 3, "messages": []}, "Expected `str`, got `int` - at `$.model`"),
        ({"model": "m", "messages": [{"role": "wizard", "content": "x"}]}, "Invalid value 'wizard'"),
        ({"model": "m", "messages": [], "temprature": 1}, "unknown field `temprature`"),
        ("not a request", "must be a dict"),
    ],
)
async def test_invalid_requests_fail_before_sending(
    core: AtomaCore, sandbox: Sandbox, request_: object, fragment: str
) -> None:
    res = await chat_create(core, request_)  # type: ignore[arg-type]
    assert isinstance(res, Err) and type(res.error) is errors.InvalidRequestError
    assert fragment in res.error.message
    assert sandbox.requests == []


async def test_crlf_in_a_header_is_refused(core: AtomaCore, sandbox: Sandbox) -> None:
    headers = {"X-Trace": "a\r\nInjected: 1"}
    with pytest.raises(errors.InvalidRequestError) as refused:  # options are checked when built
        RequestOptions(headers=headers)
    res = await chat_create(core, CHAT, {"headers": headers})  # type: ignore[arg-type]
    assert isinstance(res, Err) and type(res.error) is errors.InvalidRequestError
    assert "Injected" not in res.error.message and "Injected" not in refused.value.message
    assert sandbox.requests == []
    with pytest.raises(ValueError):
        AtomaCore("tok\r\nen")


async def test_extra_body_and_headers_are_sent(core: AtomaCore, sandbox: Sandbox) -> None:
    opts = RequestOptions(extra_body={"top_k": 5}, headers={"X-Trace": "abc"})
    assert (await chat_create(core, CHAT, opts)).ok
    assert sandbox.requests[-1].json["top_k"] == 5
    assert sandbox.requests[-1].headers["X-Trace"] == "abc"


async def test_bearer_from_environment(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATOMASDK_BEARER_AUTH", TOKEN)
    async with AtomaCore(server_url=sandbox.url) as core:
        assert (await chat_create(core, CHAT)).ok
    monkeypatch.delenv("ATOMASDK_BEARER_AUTH")
    async with AtomaCore(server_url=sandbox.url) as core:
        res = await chat_create(core, CHAT)
    assert isinstance(res, Err) and isinstance(res.error, errors.AuthenticationError)
    assert "Authorization" not in sandbox.requests[-1].headers


async def test_callable_token_is_read_for_each_request(sandbox: Sandbox) -> None:
    tokens = iter(["wrong", TOKEN])

    async def rotate() -> str:
        return next(tokens)

    async with AtomaCore(rotate, sandbox.url, retry_config=RetryConfig.none()) as core:
        first = await chat_create(core, CHAT)
        second = await chat_create(core, CHAT)
    assert isinstance(first, Err) and isinstance(first.error, errors.AuthenticationError)
    assert second.ok
    async with AtomaCore(lambda: "Bearer " + TOKEN, sandbox.url) as core:  # prefix kept, not doubled
        assert (await chat_create(core, CHAT)).ok
    assert sandbox.requests[-1].headers["Authorization"] == f"Bearer {TOKEN}"


async def test_a_failing_token_callable_is_unexpected_client_error(sandbox: Sandbox) -> None:
    def broken() -> str:
        raise RuntimeError("vault down")

    async with AtomaCore(broken, sandbox.url) as core:
        res = await chat_create(core, CHAT)
    assert isinstance(res, Err) and type(res.error) is errors.UnexpectedClientError
    assert isinstance(res.error.__cause__, RuntimeError)


async def test_user_session_is_used_and_left_open(sandbox: Sandbox) -> None:
    async with aiohttp.ClientSession() as session:
        async with AtomaCore(TOKEN, sandbox.url, session=session) as core:
            assert (await chat_create(core, CHAT)).ok
        assert not session.closed
        assert (await session.get(sandbox.url + "/health")).status == 200


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/"])
async def test_server_url_forms(sandbox: Sandbox, suffix: str) -> None:
    async with AtomaCore(TOKEN, sandbox.url + suffix) as core:
        assert (await chat_create(core, CHAT)).ok
    assert sandbox.requests[-1].path == "/v1/chat/completions"


async def test_server_url_path_prefix_and_per_call_override(sandbox: Sandbox) -> None:
    async with AtomaCore(TOKEN, "http://127.0.0.1:1/proxy") as core:
        assert core.url("/v1/chat/completions").path == "/proxy/v1/chat/completions"
        assert (await chat_create(core, CHAT, RequestOptions(server_url=sandbox.url))).ok


async def test_secret_never_leaks(sandbox: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="atoma")
    seen: list[str] = []
    hooks = Hooks(
        before_request=lambda ctx: seen.append(repr(ctx)), after_error=lambda ctx: seen.append(repr(ctx))
    )
    core = AtomaCore(TOKEN, sandbox.url, hooks=hooks, retry_config=RetryConfig.none())
    assert TOKEN not in repr(core) and TOKEN not in str(core.__dict__.get("headers"))
    sandbox.script(faults.status(401), faults.status(500, body="token was " + "redacted"))
    texts = []
    for _ in range(2):
        res = await chat_create(core, CHAT)
        assert isinstance(res, Err)
        texts += [str(res.error), repr(res.error), res.error.message]
    refused = await chat_create(core, CHAT, RequestOptions(server_url=f"http://127.0.0.1:{free_port()}"))
    assert isinstance(refused, Err)
    texts += [str(refused.error), repr(refused.error)]
    await core.close()
    texts += [r.getMessage() for r in caplog.records] + seen
    assert caplog.records, "expected DEBUG lines"
    for text in texts:
        assert TOKEN not in text


async def test_cancellation_propagates(sandbox: Sandbox, core: AtomaCore) -> None:
    sandbox.script(faults.hang())
    task = asyncio.create_task(chat_create(core, CHAT))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_every_request_field_reaches_the_server_unchanged(core: AtomaCore, sandbox: Sandbox) -> None:
    from .test_models import FULL_REQUEST

    assert (await chat_create(core, FULL_REQUEST)).ok
    assert sandbox.requests[-1].json == {**FULL_REQUEST, "stream": False}
