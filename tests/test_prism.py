"""The SDK's requests against the Atoma OpenAPI spec, checked by Stoplight Prism (third-party).

Prism runs as `prism proxy --errors` in front of the sandbox (tests/prism.py): it refuses a request
that breaks tests/data/atoma-openapi.yaml with 422 before the sandbox sees it, and turns a sandbox
answer that breaks the spec into a 500. The SDK runs without retries, so each case is one attempt.

To cover a new operation, add a row to OPERATIONS: `Row(id, plain(fn) or streamed(fn), request)`.
SPEC_REFUSES lists what the SDK lets a caller send although the spec forbids it (each one on
purpose, see DEVIATIONS in test_schema_conformance.py).
"""

from __future__ import annotations

import gc
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, NamedTuple

import aiohttp
import msgspec
import pytest

from atoma_core import AtomaCore, Err, Ok, RequestOptions, Result, RetryConfig, errors
from atoma_core.models import chat
from atoma_core.testing import Sandbox, faults
from atoma_funcs import (
    chat_create,
    chat_create_stream,
    completions_create,
    completions_create_stream,
    confidential_chat_create,
    confidential_chat_create_stream,
    confidential_embeddings_create,
    confidential_images_generate,
    embeddings_create,
    health,
    images_generate,
    models_list,
    nodes_create_lock,
    open_router_models_list,
)

from .conftest import TOKEN
from .prism import SPEC_FIXES, Prism, apply_fix, load_spec, missing_reason, running_prism, spec_for_prism
from .test_models import FULL_REQUEST

Runner = Callable[[AtomaCore, Any, "RequestOptions | None"], Awaitable[Result[Any, errors.AtomaError]]]


@pytest.fixture(scope="session")
def prism() -> Iterator[Prism]:
    """Prism for the whole session (started once: 2-6 s), or a skip saying what is missing."""
    reason = missing_reason()
    if reason is not None:
        pytest.skip(reason)
    with running_prism() as running:
        yield running


@pytest.fixture
async def upstream(prism: Prism) -> AsyncIterator[Sandbox]:
    """A fresh sandbox per test, on the port Prism forwards to."""
    async with Sandbox(token=TOKEN, port=prism.upstream_port) as sandbox:
        yield sandbox


@pytest.fixture
async def core(prism: Prism, upstream: Sandbox) -> AsyncIterator[AtomaCore]:
    core = AtomaCore(TOKEN, prism.url, retry_config=RetryConfig.none())
    yield core
    await core.close()
    gc.collect()


# ------------------------------------------------------------------ how an operation is called


def plain(fn: Callable[..., Awaitable[Result[Any, errors.AtomaError]]]) -> Runner:
    """An operation returning its value whole; `request` None calls it without one (GET routes)."""

    async def run(
        core: AtomaCore, request: Any, options: RequestOptions | None
    ) -> Result[Any, errors.AtomaError]:
        if request is None:
            return await fn(core, options=options)
        return await fn(core, request, options)

    return run


def streamed(fn: Callable[..., Awaitable[Result[Any, errors.AtomaError]]]) -> Runner:
    """A streaming operation: opened, then collected to the end."""

    async def run(
        core: AtomaCore, request: Any, options: RequestOptions | None
    ) -> Result[Any, errors.AtomaError]:
        opened = await fn(core, request, options)
        if isinstance(opened, Err):
            return opened
        async with opened.value as stream:
            collected: Result[Any, errors.AtomaError] = await stream.collect()
            return collected

    return run


class Row(NamedTuple):
    id: str
    run: Runner
    request: Any  # a dict or a request Struct; None for an operation without a body
    requests: int = 1  # what reaches the sandbox (a confidential call locks a node first)


# ------------------------------------------------------------------------------------ requests

MODEL = "meta-llama/Llama-3.3-70B-Instruct"
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hello there"}]}
TOOL = {
    "type": "function",
    "function": {
        "name": "word_count",
        "description": "Count the words in a text.",
        "parameters": {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]},
        "strict": True,
    },
}
MESSAGES = [
    {"role": "system", "content": "be brief", "name": "AI expert"},
    {
        "role": "user",
        "name": "John Doe",
        "content": [
            {"type": "text", "text": "what is in this picture?"},
            {
                "type": "image_url",
                "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"},
            },
        ],
    },
    {
        "role": "assistant",
        "content": None,  # the SDK sends "" (the proxy refuses null content)
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "word_count", "arguments": "{}"}}
        ],
    },
    {"role": "tool", "content": "42", "tool_call_id": "call_1"},
    {"role": "assistant", "content": "It says 42.", "name": "AI", "refusal": None},
    {"role": "user", "content": "thanks"},
]
# Every field of ChatCompletionRequest with a value (test_every_field_is_covered): test_models' request
# without `stream` (the SDK sets it) and with MESSAGES (its developer message is beyond the spec).
EVERY_FIELD = {**{k: v for k, v in FULL_REQUEST.items() if k != "stream"}, "messages": MESSAGES}
# Every field sent as an explicit null where the spec allows one (None is sent; a key left out is not).
NULLABLE = sorted(set(EVERY_FIELD) - {"model", "messages", "function_call"})  # function_call: any JSON
EVERY_NULL = {**CHAT, **dict.fromkeys(NULLABLE)}
TYPED = chat.ChatCompletionRequest(
    model=MODEL,
    messages=[
        chat.SystemMessage(content="be brief"),
        chat.UserMessage(
            content=[
                chat.TextContentPart(text="look"),
                chat.ImageContentPart(image_url=chat.ImageURL(url="data:,")),
            ]
        ),
    ],
    tools=[chat.Tool(function=chat.FunctionDefinition(name="word_count", parameters={"type": "object"}))],
    tool_choice="auto",
    response_format=chat.ResponseFormat(type="json_object"),
    stop=["\n\n"],
    max_completion_tokens=8,
)

OPERATIONS = [
    Row("chat_create/minimal", plain(chat_create), CHAT),
    Row("chat_create/every-field", plain(chat_create), EVERY_FIELD),
    Row("chat_create/every-null", plain(chat_create), EVERY_NULL),
    Row("chat_create/struct", plain(chat_create), TYPED),
    Row("chat_create/tool-call", plain(chat_create), {**CHAT, "tools": [TOOL], "tool_choice": "auto"}),
    Row(
        "chat_create/response-format-text", plain(chat_create), {**CHAT, "response_format": {"type": "text"}}
    ),
    Row("chat_create_stream/minimal", streamed(chat_create_stream), CHAT),
    Row("chat_create_stream/every-field", streamed(chat_create_stream), EVERY_FIELD),
    Row("chat_create_stream/every-null", streamed(chat_create_stream), EVERY_NULL),
    Row("chat_create_stream/struct", streamed(chat_create_stream), TYPED),
    Row("chat_create_stream/tool-call", streamed(chat_create_stream), {**CHAT, "tools": [TOOL]}),
    Row("embeddings_create/one", plain(embeddings_create), {"model": MODEL, "input": "hello"}),
    Row(
        "embeddings_create/every-field",
        plain(embeddings_create),
        {"model": MODEL, "input": ["a", "b"], "dimensions": 4, "encoding_format": "float", "user": "u-1"},
    ),
    Row(
        "images_generate/every-field",
        plain(images_generate),
        {
            "model": MODEL,
            "prompt": "a cat",
            "n": 2,
            "quality": "hd",
            "response_format": "url",
            "size": "256x256",
            "style": "vivid",
            "user": "u-1",
        },
    ),
    Row("models_list", plain(models_list), None),
    Row("open_router_models_list", plain(open_router_models_list), None),
    Row("health", plain(health), None),
    Row("nodes_create_lock", plain(nodes_create_lock), {"model": MODEL, "max_num_tokens": 512, "timeout": 30}),
    Row("completions_create/minimal", plain(completions_create), {"model": MODEL, "prompt": "hi"}),
    Row(
        "completions_create/every-field",
        plain(completions_create),
        {
            "model": MODEL,
            "prompt": ["hi", "there"],
            "best_of": 1,
            "echo": False,
            "frequency_penalty": 0.5,
            "logit_bias": {"50256": -100.0},
            "logprobs": 2,
            "max_tokens": 8,
            "n": 1,
            "presence_penalty": 0.1,
            "seed": 7,
            "stop": ["\n"],
            "suffix": "!",
            "temperature": 0.2,
            "top_p": 0.9,
            "user": "u-1",
        },
    ),
    Row("completions_create_stream", streamed(completions_create_stream), {"model": MODEL, "prompt": "hi"}),
    Row("confidential_chat_create", plain(confidential_chat_create), CHAT, requests=2),
    Row("confidential_chat_create_stream", streamed(confidential_chat_create_stream), CHAT, requests=2),
    Row(
        "confidential_embeddings_create",
        plain(confidential_embeddings_create),
        {"model": MODEL, "input": "x"},
        requests=2,
    ),
    Row(
        "confidential_images_generate",
        plain(confidential_images_generate),
        {"model": MODEL, "prompt": "p", "size": "64x64"},
        requests=2,
    ),
]

# What the SDK passes through although the spec forbids it: (row, where Prism reports it).
SPEC_REFUSES = [
    (Row("stop-as-a-string", plain(chat_create), {**CHAT, "stop": "END"}), ["body", "stop"]),
    (
        Row(
            "developer-role",
            plain(chat_create),
            {**CHAT, "messages": [{"role": "developer", "content": "x"}]},
        ),
        ["body", "messages", "0"],
    ),
    (
        Row("tool-choice-required", plain(chat_create), {**CHAT, "tool_choice": "required"}),
        ["body", "tool_choice"],
    ),
    (
        Row("response-format-type", plain(chat_create), {**CHAT, "response_format": {"type": "regex"}}),
        ["body", "response_format", "type"],
    ),
    (
        Row("stream/stop-as-a-string", streamed(chat_create_stream), {**CHAT, "stop": "END"}),
        ["body", "stop"],
    ),
]


# ----------------------------------------------------------------------------------- helpers


def violations(error: errors.AtomaError) -> list[dict[str, Any]]:
    """Prism's findings from its problem+json error body."""
    assert isinstance(error, errors.APIError), repr(error)
    return list(json.loads(error.body).get("validation", []))


def explain(result: Result[Any, errors.AtomaError]) -> str:
    """An assertion message: the error and, for a Prism refusal, what it found."""
    if isinstance(result, Err) and isinstance(result.error, errors.APIError):
        return f"{result.error!r}: {result.error.body}"
    return repr(result)


def refused_at(result: Result[Any, errors.AtomaError], where: list[str]) -> list[dict[str, Any]]:
    """Assert Prism refused the request (422, one attempt) and reported a finding under `where`."""
    assert isinstance(result, Err), result
    assert isinstance(result.error, errors.UnprocessableEntityError), explain(result)
    assert result.error.attempts == 1
    found = violations(result.error)
    assert any(v["location"][: len(where)] == where for v in found), found
    return found


# -------------------------------------------------------------------------------- the spec as run


def test_every_field_is_covered() -> None:
    """EVERY_FIELD (and so EVERY_NULL) follows the request model: a new field fails here until added."""
    fields = {f.encode_name for f in msgspec.structs.fields(chat.ChatCompletionRequest)}
    assert fields - {"stream"} == set(EVERY_FIELD)  # `stream` is the SDK's to set


def test_prism_gets_the_spec_with_only_the_listed_changes() -> None:
    """Undoing SPEC_FIXES gives back the spec's schemas exactly; each `#stream` operation is folded
    into its path's, its schema and answer kept."""
    original = load_spec()
    given = spec_for_prism()
    for fix in SPEC_FIXES:
        apply_fix(given, fix._replace(was=fix.now, now=fix.was))
    assert given["components"] == original["components"]
    assert set(given["paths"]) == {path for path in original["paths"] if "#" not in path}
    plain_op = original["paths"]["/v1/chat/completions"]["post"]
    stream_op = original["paths"]["/v1/chat/completions#stream"]["post"]
    merged = given["paths"]["/v1/chat/completions"]["post"]
    schema = merged["requestBody"]["content"]["application/json"]["schema"]
    assert schema["then"] == stream_op["requestBody"]["content"]["application/json"]["schema"]
    assert schema["else"] == plain_op["requestBody"]["content"]["application/json"]["schema"]
    answers = merged["responses"]["200"]["content"]
    assert answers == {
        **plain_op["responses"]["200"]["content"],
        "text/event-stream": {"x-speakeasy-sse-sentinel": "[DONE]"},
    }


# ------------------------------------------------------------------------ requests Prism accepts


@pytest.mark.parametrize("row", OPERATIONS, ids=[row.id for row in OPERATIONS])
async def test_operation_requests_pass_the_spec(row: Row, core: AtomaCore, upstream: Sandbox) -> None:
    result = await row.run(core, row.request, None)
    assert isinstance(result, Ok), explain(result)
    assert len(upstream.requests) == row.requests  # Prism let it through to the sandbox
    meta = getattr(result.value, "meta", None)  # (plain JSON, as open_router_models_list gives, has none)
    if not isinstance(result.value, dict):
        assert meta is not None and "sl-violations" not in meta.headers, meta.headers.get("sl-violations")


async def test_every_field_arrives_as_sent(core: AtomaCore, upstream: Sandbox) -> None:
    """Prism forwards what it validated: the sandbox gets every field, with the SDK's two changes."""
    result = await chat_create(core, EVERY_FIELD)
    assert isinstance(result, Ok), explain(result)
    sent = upstream.requests[-1].json
    assert sent["messages"][2]["content"] == ""
    assert sent["stream"] is False
    assert {k: v for k, v in sent.items() if k not in ("messages", "stream")} == {
        k: v for k, v in EVERY_FIELD.items() if k != "messages"
    }


@pytest.mark.parametrize("run", [plain(chat_create), streamed(chat_create_stream)], ids=["create", "stream"])
async def test_tool_call_round_trip_with_to_param(run: Runner, core: AtomaCore, upstream: Sandbox) -> None:
    """The README's tool loop: the answer's `message.to_param()` goes back with the tool's result."""
    messages: list[Any] = [{"role": "user", "content": "count these four words"}]
    first = await run(core, {"model": MODEL, "messages": messages, "tools": [TOOL]}, None)
    assert isinstance(first, Ok), explain(first)
    message = first.value.choices[0].message
    (call,) = message.tool_calls
    messages.append(message.to_param())
    words = len(json.loads(call.function.arguments)["input"].split())
    messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps({"words": words})})
    second = await run(core, {"model": MODEL, "messages": messages, "tools": [TOOL]}, None)
    assert isinstance(second, Ok), explain(second)
    assert second.value.choices[0].message.content == 'Tool said: {"words": 4}'
    sent = upstream.requests[-1].json["messages"][1]
    assert sent == {"role": "assistant", "content": "", "tool_calls": [msgspec.to_builtins(call)]}


# ------------------------------------------------------------------------ requests Prism refuses


@pytest.mark.parametrize("run", [plain(chat_create), streamed(chat_create_stream)], ids=["create", "stream"])
async def test_a_wrong_type_in_extra_body_is_refused(run: Runner, core: AtomaCore, upstream: Sandbox) -> None:
    result = await run(core, CHAT, RequestOptions(extra_body={"temperature": "hot"}))
    found = refused_at(result, ["body", "temperature"])
    assert "number" in found[0]["message"]
    assert upstream.requests == []  # refused by Prism, not by the sandbox


async def test_a_logit_bias_key_that_is_no_token_id_is_refused(core: AtomaCore, upstream: Sandbox) -> None:
    """The logit_bias fix (SPEC_FIXES) still refuses a key that is not a token id."""
    result = await chat_create(core, {**CHAT, "logit_bias": {"hello": 1.0}})
    refused_at(result, ["body", "logit_bias"])
    assert upstream.requests == []


async def test_a_struct_built_with_a_wrong_type_is_sent_and_refused(
    core: AtomaCore, upstream: Sandbox
) -> None:
    """A request Struct is sent as built (msgspec checks types on decode, not on construction; mypy
    flags this), so only a validating server catches it."""
    request = chat.ChatCompletionRequest(model=MODEL, messages=[chat.UserMessage(content="hi")], n="two")  # type: ignore[arg-type]
    refused_at(await chat_create(core, request), ["body", "n"])
    assert upstream.requests == []


@pytest.mark.parametrize(("row", "where"), SPEC_REFUSES, ids=[row.id for row, _ in SPEC_REFUSES])
async def test_what_the_sdk_allows_beyond_the_spec_is_refused(
    row: Row, where: list[str], core: AtomaCore, upstream: Sandbox
) -> None:
    refused_at(await row.run(core, row.request, None), where)
    assert upstream.requests == []


async def _raw_post(prism: Prism, body: Any, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(prism.url + "/v1/chat/completions", data=json.dumps(body), headers=headers) as response,
    ):
        return response.status, await response.json(content_type=None)


@pytest.mark.parametrize(
    ("body", "headers", "status", "finding"),
    [
        ({"messages": CHAT["messages"]}, {}, 422, {"code": "required", "message": "...property 'model'"}),
        ({"model": MODEL}, {}, 422, {"code": "required", "message": "...property 'messages'"}),
        ({**CHAT, "stream": True, "n": "2"}, {}, 422, {"location": ["body", "n"], "code": "type"}),
        (CHAT, {"Content-Type": "text/plain"}, 422, {"code": 415}),
        (CHAT, {"Authorization": ""}, 401, None),
    ],
    ids=["no-model", "no-messages", "stream-with-a-wrong-type", "not-json", "no-bearer-token"],
)
async def test_raw_requests_that_break_the_spec_are_refused(
    body: Any,
    headers: dict[str, str],
    status: int,
    finding: dict[str, Any] | None,
    prism: Prism,
    upstream: Sandbox,
) -> None:
    """Past the SDK's own checks: a bare HTTP client, to show what Prism checks on its own."""
    sent = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json", **headers}
    code, problem = await _raw_post(prism, body, {k: v for k, v in sent.items() if v})
    assert code == status, json.dumps(problem)
    if finding is not None:
        assert any(_matches(v, finding) for v in problem["validation"]), json.dumps(problem)
    assert upstream.requests == []


def _matches(found: dict[str, Any], expected: dict[str, Any]) -> bool:
    """`found` has every expected item; a message starting with "..." need only end with the rest."""
    for key, value in expected.items():
        if isinstance(value, str) and value.startswith("..."):
            if not str(found.get(key, "")).endswith(value[3:]):
                return False
        elif found.get(key) != value:
            return False
    return True


# ----------------------------------------------------------------------- answers Prism checks


async def test_an_answer_that_breaks_the_spec_becomes_a_500(core: AtomaCore, upstream: Sandbox) -> None:
    """Prism checks the sandbox's answers too: a 200 whose `choices` is no array is turned into 500."""
    upstream.script(faults.status(200, body='{"choices": "none"}', content_type="application/json"))
    result = await chat_create(core, CHAT)
    assert isinstance(result, Err) and isinstance(result.error, errors.InternalServerError), explain(result)
    found = violations(result.error)
    assert any(v["location"][:3] == ["response", "body", "choices"] for v in found), found
    assert len(upstream.requests) == 1
