"""Every plain operation over loopback HTTP against the sandbox: success, the wire request, error
paths (status, retries, bad bodies), GET routes without body or token, and the class-style face."""

from __future__ import annotations

import base64
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from atoma_core import AtomaCore, RequestOptions, RetryConfig, errors
from atoma_core.models import (
    CompletionResponse,
    EmbeddingResponse,
    HealthResponse,
    ImageGenerationResponse,
    ModelList,
    NodesCreateLockResponse,
    NodesCreateResponse,
)
from atoma_core.testing import Sandbox, faults
from atoma_funcs import (
    AtomaSDK,
    completions_create,
    completions_create_stream,
    embeddings_create,
    health,
    images_generate,
    models_list,
    nodes_create,
    nodes_create_lock,
    open_router_models_list,
)

from .conftest import TOKEN, acquired_connections, serve_app


async def test_embeddings_one_text_and_a_list(core: AtomaCore, sandbox: Sandbox) -> None:
    one = (await embeddings_create(core, {"model": "e", "input": "hello world"})).unwrap()
    assert isinstance(one, EmbeddingResponse)
    assert len(one.data) == 1 and len(one.data[0].embedding) == 8
    assert all(isinstance(x, float) and -1 <= x <= 1 for x in one.data[0].embedding)
    assert one.usage is not None and one.usage.prompt_tokens == 2
    assert one.meta is not None and one.meta.attempts == 1

    many = (await embeddings_create(core, {"model": "e", "input": ["a", "b", "hello world"], "dimensions": 4})).unwrap()
    assert [d.index for d in many.data] == [0, 1, 2]
    assert many.data[2].embedding == one.data[0].embedding[:4]  # deterministic per text
    sent = sandbox.requests[-1]
    assert sent.method == "POST" and sent.path == "/v1/embeddings"
    assert sent.json == {"model": "e", "input": ["a", "b", "hello world"], "dimensions": 4}


async def test_embeddings_base64_stays_a_string(core: AtomaCore) -> None:
    resp = (await embeddings_create(core, {"model": "e", "input": "x", "encoding_format": "base64"})).unwrap()
    raw = resp.data[0].embedding
    assert isinstance(raw, str)
    assert len(struct.unpack("<8f", base64.b64decode(raw))) == 8


async def test_images_url_and_b64(core: AtomaCore, sandbox: Sandbox) -> None:
    urls = (await images_generate(core, {"model": "i", "prompt": "a cat", "n": 2, "size": "256x256"})).unwrap()
    assert isinstance(urls, ImageGenerationResponse)
    assert len(urls.data) == 2 and all(d.url and d.url.endswith(".png") for d in urls.data)
    assert urls.data[0].revised_prompt == "a cat" and urls.created > 0
    assert sandbox.requests[-1].json == {"model": "i", "prompt": "a cat", "n": 2, "size": "256x256"}
    b64 = (await images_generate(core, {"model": "i", "prompt": "a cat", "response_format": "b64_json"})).unwrap()
    assert b64.data[0].url is None
    assert base64.b64decode(b64.data[0].b64_json or "").startswith(b"\x89PNG")


async def test_models_list_is_a_get_without_body(core: AtomaCore, sandbox: Sandbox) -> None:
    models = (await models_list(core)).unwrap()
    assert isinstance(models, ModelList)
    assert [m.id for m in models.data] == ["sandbox-model"] and models.data[0].owned_by == "atoma"
    sent = sandbox.requests[-1]
    assert sent.method == "GET" and sent.path == "/v1/models" and sent.raw == b""
    assert "Content-Type" not in sent.headers
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"


async def test_routes_without_auth_send_no_token(core: AtomaCore, sandbox: Sandbox) -> None:
    ok = (await health(core)).unwrap()
    assert isinstance(ok, HealthResponse) and ok.message == "ok"
    catalogue = (await open_router_models_list(core)).unwrap()
    assert catalogue["data"][0]["id"] == "sandbox-model"  # plain JSON
    for sent in sandbox.requests:
        assert sent.method == "GET" and "Authorization" not in sent.headers


async def test_health_and_models_need_no_body_and_refuse_one(core: AtomaCore, sandbox: Sandbox) -> None:
    res = await health(core, RequestOptions(extra_body={"x": 1}))
    assert isinstance(res.error, errors.InvalidRequestError) and "takes no request body" in res.error.message
    assert sandbox.requests == []


async def test_nodes_create_lock(core: AtomaCore, sandbox: Sandbox) -> None:
    lock = (await nodes_create_lock(core, {"model": "m", "max_num_tokens": 100})).unwrap()
    assert isinstance(lock, NodesCreateLockResponse)
    assert len(base64.b64decode(lock.public_key)) == 32
    assert lock.stack_small_id > 0 and lock.node_small_id == 1
    assert sandbox.requests[-1].json == {"model": "m", "max_num_tokens": 100}


NODE = {
    "data": {"node_small_id": 7, "public_address": "https://node.example:3000", "country": "DE"},
    "signature": "c2lnbmF0dXJl",
}


async def test_nodes_create_sends_the_signed_data_without_a_token(core: AtomaCore, sandbox: Sandbox) -> None:
    created = (await nodes_create(core, NODE)).unwrap()
    assert isinstance(created, NodesCreateResponse) and created.message == "Success"
    assert created.meta is not None and created.meta.attempts == 1
    sent = sandbox.requests[-1]
    assert (sent.method, sent.path, sent.json) == ("POST", "/v1/nodes", NODE)
    assert "Authorization" not in sent.headers  # a node is authenticated by its signature
    async with AtomaCore(server_url=sandbox.url) as anonymous:  # no token configured at all: fine
        assert (await nodes_create(anonymous, NODE)).ok


async def test_completions_create(core: AtomaCore, sandbox: Sandbox) -> None:
    resp = (await completions_create(core, {"model": "c", "prompt": "one two three", "max_tokens": 3})).unwrap()
    assert isinstance(resp, CompletionResponse)
    assert resp.choices[0].text == "You said: one" and resp.choices[0].finish_reason == "length"
    assert resp.usage is not None and resp.usage.completion_tokens == 3
    assert sandbox.requests[-1].json == {"model": "c", "prompt": "one two three", "max_tokens": 3, "stream": False}


async def test_completions_stream_accumulates_like_create(core: AtomaCore, sandbox: Sandbox) -> None:
    request = {"model": "c", "prompt": "alpha beta"}
    whole = (await completions_create(core, request)).unwrap()
    stream = (await completions_create_stream(core, request)).unwrap()
    pieces = []
    async with stream:
        async for chunk in stream:
            pieces.extend(c.text for c in chunk.choices)
    assert "".join(pieces) == whole.choices[0].text == "You said: alpha beta"
    assert stream.usage is not None and stream.usage.total_tokens == whole.usage.total_tokens  # type: ignore[union-attr]
    assert stream.metrics.chunks == 6 and stream.metrics.time_to_first_token is not None
    assert sandbox.requests[-1].json["stream"] is True
    assert sandbox.requests[-1].json["stream_options"] == {"include_usage": True}
    done = (await (await completions_create_stream(core, request)).unwrap().collect()).unwrap()
    assert done.choices[0].text == whole.choices[0].text and done.meta is not None


async def test_completions_stream_truncated_keeps_partial(core: AtomaCore, sandbox: Sandbox) -> None:
    sandbox.script(faults.truncate(after_chunks=2))
    stream = (await completions_create_stream(core, {"model": "c", "prompt": "a b c d"})).unwrap()
    with pytest.raises(errors.StreamTruncatedError) as caught:
        async with stream:
            async for _ in stream:
                pass
    assert isinstance(caught.value.partial, CompletionResponse)
    assert caught.value.partial.choices[0].text == "You said:"
    assert acquired_connections(core) == 0


@pytest.mark.parametrize(
    ("call", "request_body"),
    [
        (embeddings_create, {"model": "e", "input": "x"}),
        (images_generate, {"model": "i", "prompt": "x"}),
        (completions_create, {"model": "c", "prompt": "x"}),
        (nodes_create_lock, {"model": "m"}),
        (nodes_create, NODE),
        (models_list, None),
        (health, None),
    ],
)
async def test_every_operation_retries_and_maps_errors(
    core: AtomaCore, sandbox: Sandbox, call: Any, request_body: Any
) -> None:
    args = () if request_body is None else (request_body,)
    sandbox.script(faults.status(503))
    res = await call(core, *args)
    assert res.ok and res.value.meta.attempts == 2
    sandbox.script(faults.status(400))
    res = await call(core, *args)
    assert isinstance(res.error, errors.BadRequestError) and res.error.code == "REQUEST_ERROR"
    assert res.error.attempts == 1
    sandbox.script(faults.non_json("<html>oops</html>", status=200))
    res = await call(core, *args)
    assert isinstance(res.error, errors.ResponseValidationError) and b"oops" in res.error.raw
    sandbox.script(faults.truncated_json())
    res = await call(core, *args)
    assert isinstance(res.error, errors.ResponseValidationError)
    assert acquired_connections(core) == 0


@pytest.mark.parametrize(
    ("call", "request_body", "field"),
    [
        (embeddings_create, {"model": "e"}, "input"),
        (images_generate, {"model": "i", "prompt": 3}, "prompt"),
        (completions_create, {"prompt": "x"}, "model"),
        (nodes_create_lock, {"model": "m", "nope": 1}, "nope"),
        (nodes_create, {"data": NODE["data"]}, "signature"),
        (nodes_create, {**NODE, "data": {"node_small_id": 1, "public_address": "a"}}, "country"),
    ],
)
async def test_bad_requests_are_refused_before_sending(
    core: AtomaCore, sandbox: Sandbox, call: Any, request_body: Any, field: str
) -> None:
    res = await call(core, request_body)
    assert isinstance(res.error, errors.InvalidRequestError) and field in res.error.message
    assert sandbox.requests == []


async def test_the_server_refuses_what_its_route_lacks(core: AtomaCore) -> None:
    res = await embeddings_create(core, {"model": "e", "input": "x"}, RequestOptions(extra_body={"input": 5}))
    assert isinstance(res.error, errors.BadRequestError)
    assert res.error.message == "Request error: Missing or invalid 'input' field"


async def test_stream_true_is_refused_not_ignored(core: AtomaCore, sandbox: Sandbox) -> None:
    res = await completions_create(core, {"model": "c", "prompt": "x", "stream": True})
    assert isinstance(res.error, errors.InvalidRequestError) and "completions_create_stream" in res.error.message
    assert sandbox.requests == []


@pytest.fixture
async def bare_server() -> AsyncIterator[str]:
    """An OpenAI-compatible server with no /v1/models (llama.cpp-like): aiohttp answers 404."""
    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("/elsewhere")

    app = web.Application()
    app.router.add_get("/redirect", redirect)
    async with serve_app(app) as url:
        yield url


async def test_a_server_without_models_route_gives_not_found(bare_server: str) -> None:
    async with AtomaCore("t", bare_server, retry_config=RetryConfig.none()) as core:
        res = await models_list(core)
    assert isinstance(res.error, errors.NotFoundError) and res.error.status_code == 404


async def test_redirects_are_not_followed(bare_server: str) -> None:
    from atoma_core._body import json_response
    from atoma_core._operation import Operation
    from atoma_core._request import call

    op: Operation[Any, Any] = Operation("redirect", "GET", "/redirect", json_response(dict))
    async with AtomaCore("t", bare_server, retry_config=RetryConfig.none()) as core:
        res = await call(core, op)
    assert type(res.error) is errors.APIError and res.error.status_code == 302
    assert res.error.headers["Location"] == "/elsewhere" and "not followed" in res.error.message


# ----------------------------------------------------------------------------- class style


@pytest.fixture
async def sdk(sandbox: Sandbox) -> AsyncIterator[AtomaSDK]:
    async with AtomaSDK(TOKEN, sandbox.url) as client:
        yield client


async def test_class_style_every_operation(sdk: AtomaSDK) -> None:
    emb = await sdk.embeddings.create(model="e", input=["a", "b"])
    assert len(emb.data) == 2
    img = await sdk.images.generate({"model": "i", "prompt": "p"})
    assert img.data[0].url
    assert [m.id for m in (await sdk.models.list()).data] == ["sandbox-model"]
    assert (await sdk.models.list_open_router())["data"]
    assert (await sdk.health.check()).message == "ok"
    assert (await sdk.nodes.create_lock(model="m")).public_key
    assert (await sdk.nodes.create(NODE)).message == "Success"
    assert (await sdk.nodes.create(data=NODE["data"], signature="c2ln")).message == "Success"
    assert (await sdk.completions.create(model="c", prompt="hi")).choices[0].text == "You said: hi"
    async with await sdk.completions.create_stream(model="c", prompt="hi") as stream:
        text = "".join([c.choices[0].text async for c in stream if c.choices])
    assert text == "You said: hi"


async def test_class_style_raises_typed_errors(sdk: AtomaSDK, sandbox: Sandbox) -> None:
    sandbox.script(faults.status(401))
    with pytest.raises(errors.AuthenticationError):
        await sdk.embeddings.create(model="e", input="x")
    with pytest.raises(errors.InvalidRequestError):
        await sdk.images.generate(model="i")
    with pytest.raises(TypeError):
        await sdk.embeddings.create({"model": "e", "input": "x"}, model="e")
