"""openai-python's spellings on `AtomaSDK`: `chat.completions.create`, the per-call `timeout=`,
`max_retries=`, `extra_headers=`, `extra_body=` keywords, and `with_options(...)`."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from atoma_core import AtomaCore, RequestOptions, RetryConfig, Timeouts, errors
from atoma_core.testing import Sandbox, faults
from atoma_funcs import AtomaSDK

from .conftest import CHAT


@pytest.fixture
async def sdk(core: AtomaCore) -> AsyncIterator[AtomaSDK]:
    yield AtomaSDK(core=core)


async def test_chat_completions_create_is_chat_create(sdk: AtomaSDK) -> None:
    assert sdk.chat.completions is sdk.chat
    resp = await sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "oa"}])
    assert resp.choices[0].message.content == "You said: oa"


async def test_timeout_is_the_whole_calls_deadline(sdk: AtomaSDK, sandbox: Sandbox) -> None:
    sandbox.script(faults.hang())
    started = time.monotonic()
    with pytest.raises(errors.RequestTimeoutError) as caught:
        await sdk.chat.create(CHAT, timeout=0.2)
    assert caught.value.phase == "total" and caught.value.timeout == 0.2
    assert time.monotonic() - started < 2


async def test_max_retries(sdk: AtomaSDK, sandbox: Sandbox) -> None:
    sandbox.script(faults.status(503, times=None))
    with pytest.raises(errors.InternalServerError) as none:
        await sdk.chat.create(CHAT, max_retries=0)
    assert none.value.attempts == 1
    with pytest.raises(errors.InternalServerError) as three:
        await sdk.chat.create(CHAT, max_retries=3)
    assert three.value.attempts == 4
    with pytest.raises(errors.InternalServerError) as revived:  # a count > 0 turns retries back on
        await sdk.chat.create(CHAT, options=RequestOptions(retries=RetryConfig.none()), max_retries=1)
    assert revived.value.attempts == 2


async def test_extra_headers_and_extra_body(sdk: AtomaSDK, sandbox: Sandbox) -> None:
    await sdk.chat.create(
        model="m",
        messages=[{"role": "user", "content": "x"}],
        extra_headers={"X-Trace": "t1"},
        extra_body={"top_k": 5},
    )
    sent = sandbox.requests[-1]
    assert sent.headers["X-Trace"] == "t1"
    assert sent.json["top_k"] == 5 and "extra_body" not in sent.json and "extra_headers" not in sent.json


async def test_with_options_sets_defaults_that_calls_extend_or_override(
    sdk: AtomaSDK, sandbox: Sandbox
) -> None:
    tagged = sdk.with_options(extra_headers={"X-Team": "search"}, extra_body={"top_k": 1}, max_retries=0)
    assert tagged.core is sdk.core and isinstance(tagged, AtomaSDK)
    await tagged.chat.create(CHAT, extra_headers={"X-Trace": "t2"}, extra_body={"top_k": 2})
    sent = sandbox.requests[-1]
    assert (sent.headers["X-Team"], sent.headers["X-Trace"], sent.json["top_k"]) == ("search", "t2", 2)
    sandbox.script(faults.status(503, times=None))
    with pytest.raises(errors.InternalServerError) as once:
        await tagged.chat.create(CHAT)
    assert once.value.attempts == 1
    with pytest.raises(errors.InternalServerError) as again:  # the original keeps its own policy
        await sdk.chat.create(CHAT)
    assert again.value.attempts == 3
    sandbox.reset()
    await sdk.chat.create(CHAT)
    assert "X-Team" not in sandbox.requests[-1].headers


async def test_with_options_reaches_every_sub_client_and_stream(sdk: AtomaSDK, sandbox: Sandbox) -> None:
    tagged = sdk.with_options(RequestOptions(headers={"X-Team": "a"}), timeout=Timeouts(idle=5.0))
    assert (await tagged.health.check()).message == "ok"
    async with await tagged.chat.create_stream(CHAT) as stream:
        await stream.collect()
    await tagged.embeddings.create(model="e", input="x")
    assert [r.headers.get("X-Team") for r in sandbox.requests] == ["a", "a", "a"]


@pytest.mark.parametrize(
    "keywords",
    [{"timeout": "5"}, {"timeout": -1}, {"timeout": True}, {"max_retries": -1}, {"max_retries": 1.5}],
)
async def test_bad_keyword_values_are_refused_before_sending(
    sdk: AtomaSDK, sandbox: Sandbox, keywords: dict[str, object]
) -> None:
    with pytest.raises(errors.InvalidRequestError):
        await sdk.chat.create(CHAT, **keywords)
    with pytest.raises(errors.InvalidRequestError):
        sdk.with_options(**keywords)  # type: ignore[arg-type]
    assert sandbox.requests == []


async def test_a_request_field_named_timeout_stays_in_the_request(sdk: AtomaSDK, sandbox: Sandbox) -> None:
    await sdk.nodes.create_lock(model="m", timeout=30)
    assert sandbox.requests[-1].json == {"model": "m", "timeout": 30}
