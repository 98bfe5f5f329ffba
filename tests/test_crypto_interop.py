"""Interoperability of the confidential-compute cryptography with the official implementation,
atoma-sdk 0.1.3's `atoma_sdk.crypto_utils`, run in its own venv (it pins pydantic ~2.10, which the
dev venv's openai and llmock need newer) through tests/official_peer.py.

The venv is made by `make` (`benchmarks.run.ensure_atoma_venv`, shared with the benchmarks); these
tests make it themselves when it is missing, and skip only when it cannot be installed.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp import web

from atoma_core._crypto import b64, seal_request
from atoma_core.testing import SandboxNode
from atoma_core.testing._replies import Reply

from .test_crypto import KAT_PLAINTEXT, KAT_REQUEST, KAT_SEALED_REPLY

PEER = str(Path(__file__).with_name("official_peer.py"))


@pytest.fixture(scope="module")
def official_python() -> str:
    from benchmarks.run import ensure_atoma_venv, python_for

    if not ensure_atoma_venv():
        pytest.skip("atoma-sdk 0.1.3 could not be installed into .venv-bench-atoma (pip's error is above)")
    return python_for("atoma-sdk")


def run_peer(python: str, job: dict[str, Any]) -> Any:
    done = subprocess.run([python, PEER], input=json.dumps(job), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_known_answers_are_what_the_official_sdk_produces(official_python: str) -> None:
    official = run_peer(official_python, {"op": "kat"})
    assert official["plaintext"].encode() == KAT_PLAINTEXT
    assert official["request"] == KAT_REQUEST
    assert official["reply"] == KAT_SEALED_REPLY


def test_the_official_sdk_opens_what_we_seal_and_we_open_what_it_seals(official_python: str) -> None:
    node_private_key = os.urandom(32)
    node = SandboxNode(node_private_key)
    plaintext = b'{"model":"m","messages":[{"role":"user","content":"interop"}],"stream":true}'
    request, key = seal_request(node.public_key, plaintext, model="m", stack_small_id=3, stream=True)
    replies = ['{"choices":[{"delta":{"content":"one"}}]}', '{"choices":[],"usage":{"total_tokens":2}}']
    official = run_peer(
        official_python,
        {
            "op": "node",
            "node_private_key": b64(node_private_key),
            "request": msgspec.to_builtins(request),
            "replies": replies,
        },
    )
    assert official["plaintext"].encode() == plaintext  # decrypt_message also checked our hash
    opened = [key.open(r["ciphertext"], r["nonce"], r["response_hash"]) for r in official["replies"]]
    assert opened == [r.encode() for r in replies]


@pytest.fixture
async def node_server() -> AsyncIterator[str]:
    """A node behind `/v1/nodes/lock` and `/v1/confidential/chat/completions`: SandboxNode + Reply."""
    node = SandboxNode()

    async def lock(request: web.Request) -> web.Response:
        return web.json_response(node.lock_response(stack_small_id=5))

    async def chat(request: web.Request) -> web.StreamResponse:
        opened = node.open_request(await request.read())
        body = json.loads(opened.plaintext)
        reply = Reply(body, "interop")
        if not body.get("stream"):
            return web.json_response(node.seal(opened.key, reply.completion()))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for chunk in reply.chunks(include_usage=True):
            await response.write(b"data: " + json.dumps(node.seal(opened.key, chunk)).encode() + b"\n\n")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/nodes/lock", lock)
    app.router.add_post("/v1/confidential/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_the_official_client_talks_to_the_sandbox_node(official_python: str, node_server: str) -> None:
    """The official SDK's own confidential_chat.create / create_stream, unmodified, over HTTP."""
    job = json.dumps({"op": "client", "server_url": node_server, "content": "keep this private"}).encode()
    peer = await asyncio.create_subprocess_exec(
        official_python, PEER, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(peer.communicate(job), timeout=120)
    assert peer.returncode == 0, err.decode()
    answer = json.loads(out)
    assert answer == {"content": "You said: keep this private", "streamed": "You said: keep this private"}
