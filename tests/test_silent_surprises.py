"""What used to surprise quietly (issue 13, item 5): no token for Atoma's API is refused at once;
`stream=True` to a non-streaming call is refused; a bare `async for` + `break` closes the stream."""

from __future__ import annotations

import gc

import pytest

from atoma_core import AtomaCore, Err, HookContext, Hooks, RequestOptions, errors
from atoma_core.testing import Sandbox
from atoma_funcs import AtomaSDK, chat_create, chat_create_stream, health

from .conftest import CHAT, STREAM_CHAT, acquired_connections


class Sent(Exception):
    """Raised by a before_request hook: the call got as far as sending."""


def counting_hooks(seen: list[str]) -> Hooks:
    def before(ctx: HookContext) -> None:
        seen.append(ctx.url)
        raise Sent

    return Hooks(before_request=before)


@pytest.fixture
def no_token_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ATOMASDK_BEARER_AUTH", raising=False)
    monkeypatch.delenv("ATOMASDK_SERVER_URL", raising=False)


@pytest.mark.usefixtures("no_token_env")
async def test_no_token_for_atoma_is_refused_before_sending() -> None:
    seen: list[str] = []
    async with AtomaCore(hooks=counting_hooks(seen)) as core:
        assert core.server_url == "https://api.atoma.network"
        res = await chat_create(core, CHAT)
        stream = await chat_create_stream(core, CHAT)
    assert isinstance(res, Err) and isinstance(res.error, errors.InvalidRequestError)
    assert "ATOMASDK_BEARER_AUTH" in str(res.error) and "nothing was sent" in str(res.error)
    assert isinstance(stream, Err) and isinstance(stream.error, errors.InvalidRequestError)
    assert seen == []
    with pytest.raises(errors.InvalidRequestError, match="ATOMASDK_BEARER_AUTH"):
        await AtomaSDK(server_url="https://api.atoma.network/v1").chat.create(CHAT)


@pytest.mark.usefixtures("no_token_env")
async def test_routes_without_a_token_and_other_ways_to_authorize_are_not_refused() -> None:
    seen: list[str] = []
    async with AtomaCore(hooks=counting_hooks(seen)) as core:
        assert isinstance((await health(core)).error, errors.UnexpectedClientError)  # /health: no token
        own = RequestOptions(headers={"authorization": "Bearer from-a-gateway"})
        assert isinstance((await chat_create(core, CHAT, own)).error, errors.UnexpectedClientError)
    async with AtomaCore(hooks=counting_hooks(seen), headers={"Authorization": "Bearer k"}) as core:
        assert isinstance((await chat_create(core, CHAT)).error, errors.UnexpectedClientError)
    assert len(seen) == 3  # each got as far as sending (stopped there by the hook)


@pytest.mark.usefixtures("no_token_env")
async def test_other_servers_may_need_no_token() -> None:
    async with Sandbox() as open_sandbox, AtomaCore(server_url=open_sandbox.url) as core:
        assert (await chat_create(core, CHAT)).ok
        atoma = RequestOptions(server_url="https://api.atoma.network")
        refused = await chat_create(core, CHAT, atoma)
        assert isinstance(refused, Err) and isinstance(refused.error, errors.InvalidRequestError)
    assert AtomaCore(server_url="http://api.atoma.network:8080").token_required()
    assert not AtomaCore(server_url="https://atoma.example.com").token_required()


async def test_stream_true_to_a_plain_call_names_the_stream_call(core: AtomaCore, sandbox: Sandbox) -> None:
    res = await chat_create(core, {**CHAT, "stream": True})
    assert isinstance(res, Err) and isinstance(res.error, errors.InvalidRequestError)
    assert "chat_create_stream" in str(res.error)
    with pytest.raises(errors.InvalidRequestError, match="create_stream"):
        await AtomaSDK(core=core).chat.create(**CHAT, stream=True)
    assert sandbox.requests == []


async def test_a_bare_async_for_break_closes_the_stream(core: AtomaCore) -> None:
    stream = (await chat_create_stream(core, STREAM_CHAT)).unwrap()
    async for _ in stream:
        break
    assert stream.closed and acquired_connections(core) == 0
    del stream
    gc.collect()  # no ResourceWarning (pytest turns one into an error)


async def test_an_exception_in_a_bare_async_for_closes_the_stream(core: AtomaCore) -> None:
    stream = (await chat_create_stream(core, STREAM_CHAT)).unwrap()
    with pytest.raises(ZeroDivisionError):
        async for _ in stream:
            1 / 0  # noqa: B018
    assert stream.closed and acquired_connections(core) == 0


async def test_inside_async_with_a_break_can_resume(core: AtomaCore) -> None:
    async with (await chat_create_stream(core, STREAM_CHAT)).unwrap() as stream:
        async for _ in stream:
            break
        assert not stream.closed
        rest = [chunk async for chunk in stream]
    assert len(rest) == 8 and stream.closed
