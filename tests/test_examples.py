"""Every example in examples/, run against a sandbox, with assertions on what it produced; and each
run as a script, starting its own sandbox."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import aiohttp
import pytest
from aiohttp import web

from atoma_core.testing import Sandbox, faults

from .conftest import TOKEN, free_port

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"atoma_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def token_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The examples read the token from the environment, as real code would."""
    monkeypatch.setenv("ATOMASDK_BEARER_AUTH", TOKEN)
    monkeypatch.delenv("ATOMASDK_SERVER_URL", raising=False)


# ------------------------------------------------------------------ serverless_handler


async def test_serverless_handler_two_invocations_share_one_core(sandbox: Sandbox) -> None:
    mod = load("serverless_handler")
    # The handler runs its container's loop, so it needs a thread without a running loop; the
    # sandbox keeps serving on this test's loop meanwhile.
    try:
        results = await asyncio.to_thread(mod.main, sandbox.url)
        assert [r["statusCode"] for r in results] == [200, 200]
        bodies = [json.loads(r["body"]) for r in results]
        assert bodies[0]["answer"] == "You said: first invocation"
        assert bodies[1]["answer"] == "You said: second invocation"
        assert [b["request_id"] for b in bodies] == ["chatcmpl-000002", "chatcmpl-000003"]  # 1: warm-up
        assert all(b["total_tokens"] == 9 for b in bodies)
        core = mod.CORE
        assert core is not None and core.server_url == sandbox.url
        # a third, warm invocation reuses the same core
        third = await asyncio.to_thread(mod.handler, {"prompt": "warm"})
        assert json.loads(third["body"])["answer"] == "You said: warm"
        assert mod.CORE is core
    finally:
        await asyncio.to_thread(mod.shutdown)
    # the cold start's warm-up, then three invocations, all over the one connection it opened
    assert [(r.method, r.path) for r in sandbox.requests] == [("GET", "/health")] + [
        ("POST", "/v1/chat/completions")
    ] * 3
    assert len({r.peer for r in sandbox.requests}) == 1


async def test_serverless_handler_reports_errors_as_502(sandbox: Sandbox) -> None:
    mod = load("serverless_handler")
    await asyncio.to_thread(mod.cold_start, sandbox.url)
    sandbox.script(faults.status(400))  # after the warm-up, which is a request too
    try:
        result = await asyncio.to_thread(mod.handler, {"prompt": "x"})
    finally:
        await asyncio.to_thread(mod.shutdown)
    assert result == {"statusCode": 502, "body": json.dumps({"error": "BadRequestError"})}


async def test_serverless_cold_start_survives_a_dead_server() -> None:
    mod = load("serverless_handler")
    await asyncio.to_thread(mod.cold_start, f"http://127.0.0.1:{free_port()}")
    try:
        result = await asyncio.to_thread(mod.handler, {"prompt": "x"})
    finally:
        await asyncio.to_thread(mod.shutdown)
    assert result == {"statusCode": 502, "body": json.dumps({"error": "APIConnectionError"})}


# ------------------------------------------------------------------ relay_sse


async def test_relay_sse(sandbox: Sandbox) -> None:
    mod = load("relay_sse")
    result = await mod.main(sandbox.url, prompt="relay this please")
    assert result["text"] == "You said: relay this please"
    assert result["errors"] == []
    usage = result["usage"]
    assert usage["prompt_tokens"] == 6 and usage["completion_tokens"] == 5
    assert usage["time_to_first_token"] > 0 and usage["tokens_per_second"] > 0
    assert result["events"] == 6  # 5 deltas + usage
    assert sandbox.requests[-1].json["stream"] is True


async def _relay(sandbox: Sandbox) -> tuple[web.AppRunner, str]:
    mod = load("relay_sse")
    runner = web.AppRunner(mod.make_app(sandbox.url))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}/chat"


async def test_relay_sse_errors(sandbox: Sandbox) -> None:
    mod = load("relay_sse")
    runner, url = await _relay(sandbox)
    try:
        sandbox.script(faults.status(429, times=None, headers={"Retry-After": "0"}))
        async with aiohttp.ClientSession() as session, session.get(url, params={"prompt": "x"}) as resp:
            assert resp.status == 502  # failed before the stream started: a plain error answer
            assert (await resp.json())["error"] == "RateLimitError"
        sandbox.reset()
        sandbox.script(faults.truncate(after_chunks=3))
        events = await mod.read_sse(url, "hello there")
        assert events[0] == ("message", json.dumps({"delta": "You"}))
        name, data = events[-1]
        assert name == "error" and json.loads(data)["error"] == "StreamTruncatedError"
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            assert resp.status == 400
    finally:
        await runner.cleanup()


# ------------------------------------------------------------------ tool_calling


async def test_tool_calling_round_trip(sandbox: Sandbox) -> None:
    mod = load("tool_calling")
    result = await mod.main(sandbox.url)
    assert result == {"plain": 'Tool said: {"words": 7}', "streamed": 'Tool said: {"words": 7}'}
    assert len(sandbox.requests) == 4
    first, second = sandbox.requests[0].json, sandbox.requests[1].json
    assert first["tools"][0]["function"]["name"] == "word_count"
    user, assistant, tool = second["messages"]
    assert user == {"role": "user", "content": "How many words are in this sentence?"}
    assert assistant["role"] == "assistant" and assistant["content"] == ""  # null content filled in
    call = assistant["tool_calls"][0]
    assert call["function"]["name"] == "word_count"
    assert json.loads(call["function"]["arguments"]) == {"input": "How many words are in this sentence?"}
    assert tool == {"role": "tool", "content": '{"words": 7}', "tool_call_id": call["id"]}
    assert sandbox.requests[3].json["stream"] is True
    assert sandbox.requests[3].json["messages"][1]["tool_calls"][0]["function"] == call["function"]


# ------------------------------------------------------------------ fan_out


async def test_fan_out_100_prompts_with_bounded_concurrency(sandbox: Sandbox) -> None:
    mod = load("fan_out")
    sandbox.script(faults.delay(0.005, times=None))  # slow enough that requests overlap
    result = await mod.main(sandbox.url, n=100, concurrency=10)
    assert result["ok"] == 100 and result["errors"] == {}
    assert result["max_in_flight"] == 10
    assert result["prompt_tokens"] == 100 * 6  # "prompt number N": 3 words + 3
    assert result["completion_tokens"] == 100 * 5  # "You said: prompt number N"
    assert result["answers"][42] == "You said: prompt number 42"
    assert len(sandbox.requests) == 100


async def test_fan_out_counts_failures_without_stopping(sandbox: Sandbox) -> None:
    mod = load("fan_out")
    sandbox.script(faults.status(400), faults.status(401))
    result = await mod.main(sandbox.url, n=20, concurrency=3)
    assert result["ok"] == 18
    assert result["errors"] == {"BadRequestError": 1, "AuthenticationError": 1}
    assert result["max_in_flight"] <= 3
    assert result["answers"].count(None) == 2


# ------------------------------------------------------------------ as scripts


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("serverless_handler", "You said: second invocation"),
        ("relay_sse", "'text': 'You said: Relay me, please'"),
        ("tool_calling", 'Tool said: {"words": 7}'),
        ("fan_out", "'ok': 100, 'errors': {}, 'prompt_tokens': 600, 'completion_tokens': 500"),
    ],
)
def test_runs_as_a_script_with_its_own_sandbox(name: str, expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATOMASDK_", "PYTHONDEVMODE"))}
    res = subprocess.run(
        [sys.executable, "-W", "error::ResourceWarning", str(EXAMPLES / f"{name}.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    assert expected in res.stdout
    assert res.stderr == ""


# ------------------------------------------------------------------ confidential_chat


async def test_confidential_chat_streams_through_the_node(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    mod = load("confidential_chat")
    text, tokens = await mod.main(sandbox.url, "a secret plan")
    assert text == "You said: a secret plan" and tokens > 0
    assert capsys.readouterr().out == "You said: a secret plan\n"
    sealed = [r for r in sandbox.requests if r.path == "/v1/confidential/chat/completions"]
    assert len(sealed) == 1 and b"secret plan" not in sealed[0].raw


def test_confidential_chat_runs_as_a_script() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATOMASDK_")}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "confidential_chat.py"), "hello", "node"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "You said: hello node\n" and done.stderr.strip().endswith("tokens")


# ------------------------------------------------------------------ against a server you give


@pytest.mark.parametrize(
    ("name", "args", "expected", "requests"),
    [
        ("serverless_handler", [], "You said: second invocation", 3),  # warm-up + 2 invocations
        ("relay_sse", [], "'text': 'You said: Relay me, please'", 1),
        ("tool_calling", [], 'Tool said: {"words": 7}', 4),
        ("fan_out", [], "'ok': 100, 'errors': {}", 100),
        ("confidential_chat", ["given", "server"], "You said: given server", 2),  # lock + sealed chat
    ],
)
async def test_runs_against_the_server_in_atomasdk_server_url(
    sandbox: Sandbox, name: str, args: list[str], expected: str, requests: int
) -> None:
    """With ATOMASDK_SERVER_URL set, each example talks to that server and starts no sandbox of its
    own: every request it makes reaches the test's sandbox, with the token from the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATOMASDK_", "PYTHONDEVMODE"))}
    env.update(ATOMASDK_SERVER_URL=sandbox.url, ATOMASDK_BEARER_AUTH=TOKEN)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-W", "error::ResourceWarning", str(EXAMPLES / f"{name}.py"), *args,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    assert expected in out.decode()
    assert len(sandbox.requests) == requests  # the sandbox checks the token: a 401 would have failed
    # (the warm-up's GET /health takes no token)
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in sandbox.requests if r.path != "/health")


async def test_serverless_handler_takes_the_server_as_an_argument(sandbox: Sandbox) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATOMASDK_", "PYTHONDEVMODE"))}
    env["ATOMASDK_BEARER_AUTH"] = TOKEN
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLES / "serverless_handler.py"), sandbox.url,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    assert "You said: first invocation" in out.decode()
    assert [r.path for r in sandbox.requests] == ["/health", "/v1/chat/completions", "/v1/chat/completions"]
