"""Fallbacks: another model or another server (a second sandbox as a second region) when the
first fails in a way another target can help; never for a request that is wrong."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator

import pytest

from atoma_core import AtomaCore, Hooks, RequestOptions, RetryConfig
from atoma_core.config import Fallback
from atoma_core.errors import (
    APIConnectionError,
    BadRequestError,
    InternalServerError,
    InvalidRequestError,
    RateLimitError,
    StreamInterruptedError,
)
from atoma_core.testing import Sandbox, faults
from atoma_funcs import chat_create, chat_create_stream, embeddings_create, models_list

from .conftest import CHAT, TOKEN, _fast_backoff, acquired_connections


@pytest.fixture
async def region2() -> AsyncIterator[Sandbox]:
    async with Sandbox(token=TOKEN) as sb:
        yield sb


def _core(sandbox: Sandbox, **kwargs: object) -> AtomaCore:
    kwargs.setdefault("retry_config", RetryConfig(backoff=_fast_backoff()))
    return AtomaCore(TOKEN, sandbox.url, **kwargs)  # type: ignore[arg-type]


async def test_model_down_falls_back_to_another_model(sandbox: Sandbox) -> None:
    sandbox.script(faults.only_for("sandbox-model", faults.status(503, times=None)))
    async with _core(sandbox) as core:
        res = await chat_create(core, CHAT, RequestOptions(fallbacks=["backup-model"]))
        assert res.ok, res
        meta = res.value.meta
        assert meta is not None
        assert (meta.model, meta.server_url) == ("backup-model", sandbox.url)
        assert [f.model for f in meta.fallbacks] == ["sandbox-model"]
        assert isinstance(meta.fallbacks[0].error, InternalServerError)
        assert meta.attempts == 4  # three to the first model (2 retries), one to the backup
        sent = [r.json["model"] for r in sandbox.requests]
        assert sent == ["sandbox-model"] * 3 + ["backup-model"]
        assert sandbox.requests[-1].json["messages"] == CHAT["messages"]  # the same request


async def test_region_down_falls_back_to_another_server(sandbox: Sandbox, region2: Sandbox) -> None:
    sandbox.script(faults.reset(times=None))
    async with _core(sandbox, fallbacks=[Fallback(server_url=region2.url)]) as core:
        res = await chat_create(core, CHAT)
        assert res.ok, res
        assert res.value.meta is not None
        assert res.value.meta.server_url == region2.url
        assert res.value.meta.model == "sandbox-model"
        assert isinstance(res.value.meta.fallbacks[0].error, APIConnectionError)
        assert len(region2.requests) == 1
        assert region2.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"
        assert acquired_connections(core) == 0


async def test_a_wrong_request_never_falls_back(sandbox: Sandbox, region2: Sandbox) -> None:
    sandbox.script(faults.status(400))
    async with _core(sandbox, fallbacks=[Fallback(server_url=region2.url)]) as core:
        res = await chat_create(core, CHAT)
        assert not res.ok
        assert isinstance(res.error, BadRequestError)
        assert res.error.attempted == ()
        assert region2.requests == []


async def test_all_failing_returns_the_last_error_with_the_earlier_ones(
    sandbox: Sandbox, region2: Sandbox
) -> None:
    sandbox.script(faults.status(503, times=None))
    region2.script(faults.status(429, times=None))
    options = RequestOptions(
        fallbacks=["other-model", Fallback(model="third", server_url=region2.url)], retries=0
    )
    async with _core(sandbox) as core:
        res = await chat_create(core, CHAT, options)
        assert not res.ok
        assert isinstance(res.error, RateLimitError)
        tried = [(f.model, f.server_url, type(f.error)) for f in res.error.attempted]
        assert tried == [
            ("sandbox-model", sandbox.url, InternalServerError),
            ("other-model", sandbox.url, InternalServerError),
        ]
        assert region2.requests[0].json["model"] == "third"


async def test_a_stream_falls_back_only_before_its_first_event(sandbox: Sandbox, region2: Sandbox) -> None:
    async with _core(sandbox, fallbacks=[Fallback(server_url=region2.url)]) as core:
        sandbox.script(faults.error_event(0, code="SERVICE_UNAVAILABLE", times=None))
        res = await chat_create_stream(core, CHAT)
        assert res.ok, res
        async with res.value as stream:
            collected = await stream.collect()
        assert collected.ok
        assert collected.value.meta is not None
        assert collected.value.meta.server_url == region2.url
        assert len(region2.requests) == 1

        sandbox.reset()
        region2.reset()
        sandbox.script(faults.reset(after_chunks=2))  # the stream has started: no fallback now
        res = await chat_create_stream(core, CHAT)
        assert res.ok
        with pytest.raises(StreamInterruptedError):
            async with res.value as stream:
                async for _ in stream:
                    pass
        assert region2.requests == []
        assert acquired_connections(core) == 0


async def test_an_empty_list_turns_the_core_fallbacks_off(sandbox: Sandbox) -> None:
    sandbox.script(faults.status(503, times=None))
    async with _core(sandbox, fallbacks=["backup"], retry_config=0) as core:
        res = await chat_create(core, CHAT, {"fallbacks": []})
        assert not res.ok
        assert len(sandbox.requests) == 1


async def test_call_hooks_see_one_call_across_targets(sandbox: Sandbox, region2: Sandbox) -> None:
    starts: list[str] = []
    ends: list[object] = []
    hooks = Hooks(
        on_call_start=lambda info: starts.append(info.url), on_call_end=lambda info: ends.append(info)
    )
    sandbox.script(faults.status(503, times=None))
    async with _core(sandbox, hooks=hooks, fallbacks=[Fallback(server_url=region2.url)]) as core:
        res = await chat_create(core, CHAT, {"retries": 0})
        assert res.ok
        res2 = await chat_create_stream(core, CHAT, {"retries": 0})
        assert res2.ok
        await res2.value.aclose()
    assert len(starts) == 2 and len(ends) == 2


async def test_model_only_fallbacks_are_skipped_for_operations_without_a_model(
    sandbox: Sandbox, region2: Sandbox
) -> None:
    sandbox.script(faults.status(503, times=None))
    async with _core(sandbox, retry_config=0) as core:
        res = await models_list(core, {"fallbacks": ["some-model", Fallback(server_url=region2.url)]})
        assert res.ok, res
        assert len(sandbox.requests) == 1 and len(region2.requests) == 1
        embed = await embeddings_create(
            core,
            {"model": "e1", "input": "hi"},
            {"fallbacks": [Fallback(model="e2", server_url=region2.url)]},
        )
        assert embed.ok and embed.value.meta is not None
        assert embed.value.meta.model == "e2"


def test_fallbacks_are_checked_when_built() -> None:
    with pytest.raises(InvalidRequestError, match="Fallback needs"):
        Fallback()
    with pytest.raises(InvalidRequestError, match="fallbacks"):
        RequestOptions(fallbacks="model-b")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="Fallback"):
        RequestOptions(fallbacks=[3])  # type: ignore[list-item]
    with pytest.raises(InvalidRequestError, match="credentials"):
        Fallback(server_url="https://user:secret@host")
    assert RequestOptions(fallbacks=["m"]).fallbacks == (Fallback(model="m"),)
    gc.collect()


async def test_a_confidential_call_falls_back_to_another_region_and_locks_there(
    sandbox: Sandbox, region2: Sandbox
) -> None:
    from atoma_funcs import confidential_chat_create

    request = {"model": "sandbox-model", "messages": [{"role": "user", "content": "secret"}]}
    sandbox.script(faults.status(503, times=None))
    async with _core(sandbox, fallbacks=[Fallback(server_url=region2.url)], retry_config=0) as core:
        res = await confidential_chat_create(core, request)
        assert res.ok, res
        assert res.value.choices[0].message.content == "You said: secret"
        assert res.value.meta is not None and res.value.meta.server_url == region2.url
        assert [r.path for r in region2.requests] == ["/v1/nodes/lock", "/v1/confidential/chat/completions"]
