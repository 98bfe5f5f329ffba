"""Node-key verification end to end over loopback HTTP: the sandbox plays the Atoma proxy, the
node and a Sui full node (`sandbox.sui`, its chain holding the node's key commitments over three
rotations, a stale `NodeEntry` and other nodes' events across several pages). A malicious proxy
(`faults.substitute_key`) hands out another key: with a verifier nothing reaches the
confidential route; without one, the proxy reads the prompt."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from atoma_core import AtomaCore, Hooks, RequestOptions, RetryConfig, Timeouts, errors
from atoma_core.attest import KeyCommitment, PinnedKeys, SuiKeyCommitments
from atoma_core.config import shown_url
from atoma_core.result import Err, Ok
from atoma_core.testing import Sandbox, faults
from atoma_core.testing._sui import ATOMA_DB, PACKAGE
from atoma_funcs import (
    confidential_chat_create,
    confidential_chat_create_stream,
    confidential_embeddings_create,
    confidential_images_generate,
)

from .conftest import STREAM_CHAT, TOKEN, _fast_backoff, acquired_connections, free_port

SECRET = "the merger closes on friday"
REQUEST = {"model": "sandbox-model", "messages": [{"role": "user", "content": SECRET}]}
MiB = 1024 * 1024


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def sealed_posts(sandbox: Sandbox) -> int:
    return sum(r.path.startswith("/v1/confidential/") for r in sandbox.requests)


def locks(sandbox: Sandbox) -> int:
    return sum(r.path == "/v1/nodes/lock" for r in sandbox.requests)


def on_chain(sandbox: Sandbox, **options: Any) -> SuiKeyCommitments:
    return SuiKeyCommitments(rpc_url=sandbox.sui_url, atoma_db=ATOMA_DB, package=PACKAGE, **options)


def verified_core(sandbox: Sandbox, verifier: Any, **options: Any) -> AtomaCore:
    options.setdefault("retry_config", RetryConfig(backoff=_fast_backoff()))
    return AtomaCore(TOKEN, sandbox.url, node_key_verifier=verifier, **options)


@pytest.fixture
async def vcore(sandbox: Sandbox) -> AsyncIterator[AtomaCore]:
    core = verified_core(sandbox, on_chain(sandbox))
    yield core
    await core.close()


async def refused(core: AtomaCore, sandbox: Sandbox, reason: str) -> errors.NodeKeyVerificationError:
    """The call's error, checked: typed, naming the node, nothing sealed sent, no secret shown."""
    res = await confidential_chat_create(core, REQUEST)
    assert isinstance(res, Err) and isinstance(res.error, errors.NodeKeyVerificationError), res
    assert res.error.reason == reason and res.error.node_small_id == 1
    assert str(res.error).startswith("node 1: ")
    assert sealed_posts(sandbox) == 0 and sandbox.intercepted == []
    for secret in (TOKEN, SECRET):
        assert secret not in str(res.error) and secret not in repr(res.error)
    return res.error


async def test_the_honest_path_is_ok_for_every_operation(vcore: AtomaCore, sandbox: Sandbox) -> None:
    resp = (await confidential_chat_create(vcore, REQUEST)).unwrap()
    assert resp.choices[0].message.content == f"You said: {SECRET}"
    methods = [r["method"] for r in sandbox.sui.requests]
    assert methods[0] == "sui_getObject" and set(methods[1:]) == {"suix_queryEvents"}
    assert len(methods) == 3  # 33 events at rotation 3, newest first: the node's is on page 2
    stream = (await confidential_chat_create_stream(vcore, STREAM_CHAT)).unwrap()
    assert (await stream.collect()).unwrap().choices[0].message.content
    assert (await confidential_embeddings_create(vcore, {"model": "e", "input": "x"})).unwrap().data
    assert (await confidential_images_generate(vcore, {"model": "i", "prompt": "p"})).unwrap().data
    assert len(sandbox.sui.requests) == 3  # one node, one key: checked once
    assert all("Authorization" not in h and "authorization" not in h for h in sandbox.sui.headers)
    assert acquired_connections(vcore) == 0


async def test_the_rpc_gets_none_of_the_token_headers_or_hooks_meant_for_atoma(sandbox: Sandbox) -> None:
    seen: list[str] = []
    hooks = Hooks(before_request=lambda ctx: seen.append(str(ctx.url)))
    headers = {"X-Team": "search-secret"}
    async with verified_core(sandbox, on_chain(sandbox), headers=headers, hooks=hooks) as core:
        (await confidential_chat_create(core, REQUEST)).unwrap()
    assert len(sandbox.sui.headers) == 3 and all(url.startswith(sandbox.url + "/v1/") for url in seen)
    for sent in sandbox.sui.headers:
        assert not {"Authorization", "X-Team"} & set(sent) and TOKEN not in str(sent)


async def test_a_substituted_key_is_refused_and_nothing_is_sent(vcore: AtomaCore, sandbox: Sandbox) -> None:
    sandbox.script(faults.substitute_key(times=None))  # the proxy hands out its own key
    error = await refused(vcore, sandbox, "mismatch")
    assert "not the key it committed on chain at rotation 3" in error.message
    stream = await confidential_chat_create_stream(vcore, STREAM_CHAT)
    assert isinstance(stream.error, errors.NodeKeyVerificationError) and sealed_posts(sandbox) == 0
    emb = await confidential_embeddings_create(vcore, {"model": "e", "input": SECRET})
    assert isinstance(emb.error, errors.NodeKeyVerificationError) and sealed_posts(sandbox) == 0


async def test_without_a_verifier_the_malicious_proxy_reads_the_prompt(
    core: AtomaCore, sandbox: Sandbox
) -> None:
    sandbox.script(faults.substitute_key(times=None))
    resp = (await confidential_chat_create(core, REQUEST)).unwrap()  # nothing notices
    assert resp.choices[0].message.content == f"You said: {SECRET}"
    assert SECRET.encode() in sandbox.intercepted[0]


async def test_another_nodes_key_does_not_count(vcore: AtomaCore, sandbox: Sandbox) -> None:
    sandbox.script(faults.substitute_key(b64(sandbox.sui.other_key(2))))  # node 2's current key, as node 1
    await refused(vcore, sandbox, "mismatch")
    sandbox.reset()
    assert sandbox.node is not None  # node 1's real key, claimed for node 2 (committed another)
    sandbox.script(faults.substitute_key(sandbox.node.public_key, node_small_id=2))
    res = await confidential_chat_create(vcore, REQUEST)
    assert isinstance(res.error, errors.NodeKeyVerificationError) and res.error.node_small_id == 2
    assert res.error.reason == "mismatch" and sealed_posts(sandbox) == 0


@pytest.mark.parametrize("which", [0, 1])
async def test_a_key_from_an_old_rotation_does_not_count(
    vcore: AtomaCore, sandbox: Sandbox, which: int
) -> None:
    sandbox.script(faults.substitute_key(b64(sandbox.sui.old_keys[which])))
    await refused(vcore, sandbox, "mismatch")


async def test_after_a_rotation_without_a_new_commitment_the_old_key_is_refused(
    vcore: AtomaCore, sandbox: Sandbox
) -> None:
    sandbox.sui.rotate(0xDEAD_BEEF)  # rotation 4: the node has not committed yet
    error = await refused(vcore, sandbox, "no_commitment")
    assert "rotation 4" in error.message
    assert len(sandbox.sui.requests) == 2  # the newest event is at rotation 3: the search ends there


async def test_the_stale_node_entry_does_not_fool_it(vcore: AtomaCore, sandbox: Sandbox) -> None:
    entry = sandbox.sui.entries[1]
    assert bytes(entry["confidential_compute_public_key_commitment"]) == sandbox.sui.stale_key
    assert sandbox.node is not None and sandbox.sui.stale_key != sandbox.node.key
    sandbox.script(faults.substitute_key(b64(sandbox.sui.stale_key)))  # the entry's key
    await refused(vcore, sandbox, "mismatch")
    sandbox.reset()
    assert (await confidential_chat_create(vcore, REQUEST)).ok  # the latest event's key


async def test_a_relock_after_423_is_checked_too(vcore: AtomaCore, sandbox: Sandbox) -> None:
    (await confidential_chat_create(vcore, REQUEST)).unwrap()
    sandbox.reset()
    sandbox.script(faults.status(423), faults.substitute_key())
    res = await confidential_chat_create(vcore, REQUEST)
    assert isinstance(res.error, errors.NodeKeyVerificationError) and res.error.reason == "mismatch"
    assert [r.path for r in sandbox.requests] == ["/v1/confidential/chat/completions", "/v1/nodes/lock"]
    assert (await confidential_chat_create(vcore, REQUEST)).ok  # the refused lock was not kept


async def test_100_calls_cost_one_check(vcore: AtomaCore, sandbox: Sandbox) -> None:
    for _ in range(100):
        (await confidential_chat_create(vcore, REQUEST)).unwrap()
    assert len(sandbox.sui.requests) == 3 and locks(sandbox) == 1


async def test_concurrent_first_calls_share_one_lock_and_one_check(
    vcore: AtomaCore, sandbox: Sandbox
) -> None:
    sandbox.sui.script(faults.delay(0.2))  # the check is in flight while the others arrive
    results = await asyncio.gather(*(confidential_chat_create(vcore, REQUEST) for _ in range(20)))
    assert all(r.ok for r in results)
    assert locks(sandbox) == 1 and len(sandbox.sui.requests) == 3 and sealed_posts(sandbox) == 20


async def test_concurrent_checks_of_one_key_share_the_rpc(sandbox: Sandbox) -> None:
    verifier = on_chain(sandbox)
    sandbox.sui.script(faults.delay(0.2))
    assert sandbox.node is not None
    async with AtomaCore(TOKEN, sandbox.url) as core:
        results = await asyncio.gather(
            *(verifier.verify_node_key(core, 1, sandbox.node.key) for _ in range(10))
        )
        assert results == [Ok(None)] * 10 and len(sandbox.sui.requests) == 3
        wrong = await asyncio.gather(*(verifier.verify_node_key(core, 1, bytes(32)) for _ in range(10)))
        assert all(isinstance(r, Err) and r.error.reason == "mismatch" for r in wrong)
        assert len(sandbox.sui.requests) == 6  # a refusal is shared by the calls in flight, not cached


async def test_the_cache_expires(sandbox: Sandbox) -> None:
    async with verified_core(sandbox, on_chain(sandbox, ttl=0)) as core:
        for _ in range(3):
            (await confidential_chat_create(core, REQUEST)).unwrap()
    assert len(sandbox.sui.requests) == 9


async def test_paging_follows_next_cursor(sandbox: Sandbox) -> None:
    async with verified_core(sandbox, on_chain(sandbox, page_size=4)) as core:
        (await confidential_chat_create(core, REQUEST)).unwrap()
    pages = [r["params"] for r in sandbox.sui.requests[1:]]
    assert len(pages) == 8 and pages[0][1] is None and all(p[1] is not None for p in pages[1:])
    assert all(p[2] == 4 and p[3] is True for p in pages)
    async with verified_core(sandbox, on_chain(sandbox, page_size=4, max_pages=3)) as core:
        res = await confidential_chat_create(core, REQUEST)
    assert isinstance(res.error, errors.NodeKeyVerificationError) and res.error.reason == "no_commitment"
    assert "newest 3 pages" in res.error.message


# -- the RPC fails: closed, typed, in bounded time --------------------------------------------


async def test_rpc_down_fails_closed(sandbox: Sandbox) -> None:
    verifier = SuiKeyCommitments(
        rpc_url=f"http://127.0.0.1:{free_port()}", atoma_db=ATOMA_DB, package=PACKAGE
    )
    async with verified_core(sandbox, verifier) as core:
        error = await refused(core, sandbox, "unavailable")
    assert isinstance(error.__cause__, errors.APIConnectionError)


@pytest.mark.parametrize(
    "how",
    [
        {"timeouts": Timeouts(connect=1, read=0.3), "retry_config": 0},  # the core's read timeout
        {"verifier": {"timeout": 0.3}},  # the verifier's own bound on one check
        {"options": {"timeout_ms": 300}},  # the call's deadline
    ],
)
async def test_rpc_slow_fails_closed_in_bounded_time(sandbox: Sandbox, how: dict[str, Any]) -> None:
    sandbox.sui.script(faults.hang(times=None))
    verifier = on_chain(sandbox, **how.get("verifier", {}))
    core_options = {k: v for k, v in how.items() if k in ("timeouts", "retry_config")}
    async with verified_core(sandbox, verifier, **core_options) as core:
        started = time.monotonic()
        res = await confidential_chat_create(core, REQUEST, how.get("options"))
        elapsed = time.monotonic() - started
    assert isinstance(res.error, (errors.NodeKeyVerificationError, errors.RequestTimeoutError)), res
    if isinstance(res.error, errors.NodeKeyVerificationError):
        assert res.error.reason == "unavailable"
    assert elapsed < 3.0 and sealed_posts(sandbox) == 0


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (faults.non_json("<html>502 Bad Gateway</html>"), "invalid_answer"),
        (
            faults.non_json('{"jsonrpc": "2.0", "result": {"data": 7}}', content_type="application/json"),
            "invalid_answer",
        ),
        (faults.non_json('{"jsonrpc": "2.0", "id": 1}', content_type="application/json"), "invalid_answer"),
        (faults.error_event(message="rate limited"), "unavailable"),
        (faults.status(404), "unavailable"),
    ],
)
async def test_rpc_garbage_fails_closed(sandbox: Sandbox, fault: faults.Fault, reason: str) -> None:
    sandbox.sui.script(fault)
    async with verified_core(sandbox, on_chain(sandbox)) as core:
        await refused(core, sandbox, reason)


async def test_a_malformed_commitment_fails_closed(sandbox: Sandbox) -> None:
    sandbox.sui.events[-1]["new_public_key"] = [1] * 31  # the newest event: a 31-byte key
    sandbox.sui.events[-1]["node_id"] = {"inner": "1"}
    async with verified_core(sandbox, on_chain(sandbox)) as core:
        error = await refused(core, sandbox, "invalid_answer")
    assert "32 bytes" in error.message


async def test_rpc_answering_100_mb_fails_closed(sandbox: Sandbox) -> None:
    sandbox.sui.script(faults.oversized_event(100 * MiB))
    async with verified_core(sandbox, on_chain(sandbox)) as core:
        started = time.monotonic()
        error = await refused(core, sandbox, "invalid_answer")
        elapsed = time.monotonic() - started
    assert isinstance(error.__cause__, errors.ResponseTooLargeError) and elapsed < 10


async def test_a_failed_check_is_not_cached(sandbox: Sandbox) -> None:
    sandbox.sui.script(faults.status(503, times=4))  # the retries of the first call
    async with verified_core(sandbox, on_chain(sandbox)) as core:
        await refused(core, sandbox, "unavailable")
        assert (await confidential_chat_create(core, REQUEST)).ok


# -- other verifiers --------------------------------------------------------------------------


async def test_pinned_keys(sandbox: Sandbox) -> None:
    assert sandbox.node is not None
    pinned = PinnedKeys({1: sandbox.node.public_key})
    async with verified_core(sandbox, pinned) as core:
        assert (await confidential_chat_create(core, REQUEST)).ok
    sandbox.reset()
    sandbox.script(faults.substitute_key())
    async with verified_core(sandbox, pinned) as core:
        await refused(core, sandbox, "mismatch")
    sandbox.reset()
    async with verified_core(sandbox, PinnedKeys({2: sandbox.node.key})) as core:
        await refused(core, sandbox, "not_pinned")
    with pytest.raises(errors.InvalidRequestError):
        PinnedKeys({1: b"short"})


async def test_the_evidence_check_sees_the_commitment_and_can_refuse(sandbox: Sandbox) -> None:
    seen: list[KeyCommitment] = []

    async def check(commitment: KeyCommitment) -> bool:
        seen.append(commitment)
        (device,) = commitment.evidence()
        return bool(device["evidence"] == commitment.expected_evidence_nonce().hex())

    async with verified_core(sandbox, on_chain(sandbox, check_evidence=check)) as core:
        assert (await confidential_chat_create(core, REQUEST)).ok
    assert sandbox.node is not None
    (commitment,) = seen
    assert commitment.public_key == sandbox.node.key and commitment.key_rotation_counter == 3
    assert commitment.device_type == 300 and commitment.rotation_nonce == sandbox.sui.nonce
    sandbox.reset()
    async with verified_core(sandbox, on_chain(sandbox, check_evidence=lambda c: False)) as core:
        await refused(core, sandbox, "evidence")


async def test_a_broken_verifier_fails_closed(sandbox: Sandbox) -> None:
    class Raises:
        async def verify_node_key(self, *args: Any) -> Any:
            raise RuntimeError("bug")

    class AnswersNonsense:
        async def verify_node_key(self, *args: Any) -> Any:
            return True

    for verifier, reason in ((Raises(), "unavailable"), (AnswersNonsense(), "invalid_answer")):
        async with verified_core(sandbox, verifier) as core:
            await refused(core, sandbox, reason)
    with pytest.raises(errors.InvalidRequestError, match="node_key_verifier"):
        AtomaCore(TOKEN, sandbox.url, node_key_verifier="yes please")  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidRequestError, match="atoma_db"):
        SuiKeyCommitments(rpc_url=sandbox.sui_url, atoma_db="AtomaDb", package=PACKAGE)


async def test_per_call_options_reach_the_check(vcore: AtomaCore, sandbox: Sandbox) -> None:
    sandbox.sui.script(faults.hang())
    res = await confidential_chat_create(vcore, REQUEST, RequestOptions(timeout_ms=200))
    assert isinstance(res.error, (errors.NodeKeyVerificationError, errors.RequestTimeoutError))
    assert sealed_posts(sandbox) == 0


async def test_per_call_retries_reach_the_check(vcore: AtomaCore, sandbox: Sandbox) -> None:
    # The deadline test above passes whether or not the options reach the check (the call's own
    # timer ends it anyway); the retry rules show it: one 503 from the RPC, no retries asked for.
    sandbox.sui.script(faults.status(503))
    no_retries = RequestOptions(retries=RetryConfig(max_retries=0, backoff=_fast_backoff()))
    res = await confidential_chat_create(vcore, REQUEST, no_retries)
    assert isinstance(res.error, errors.NodeKeyVerificationError) and res.error.reason == "unavailable"
    assert isinstance(res.error.__cause__, errors.APIError) and res.error.__cause__.status_code == 503
    assert len(sandbox.sui.requests) == 1
    sandbox.sui.reset()
    sandbox.sui.script(faults.status(503))
    assert (await confidential_chat_create(vcore, REQUEST)).ok  # the core's rules: retried
    assert len(sandbox.sui.requests) == 4


def test_the_rpc_url_path_is_not_shown() -> None:
    verifier = SuiKeyCommitments(
        rpc_url="https://rpc.example/v1/secret-api-key", atoma_db=ATOMA_DB, package=PACKAGE
    )
    assert "secret-api-key" not in repr(verifier) and "rpc.example" in repr(verifier)


async def test_the_rpc_url_path_is_not_logged(sandbox: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    """The attempt's DEBUG line names the RPC's host and hides its path (`/sui` here; a
    provider's API key in real life); Atoma's own calls keep their operation path."""
    caplog.set_level(logging.DEBUG, logger="atoma")
    async with verified_core(sandbox, on_chain(sandbox)) as core:
        (await confidential_chat_create(core, REQUEST)).unwrap()
    attempts = [r.getMessage() for r in caplog.records if " attempt 1: " in r.getMessage()]
    rpc_path = sandbox.sui_url.removeprefix(sandbox.url)
    assert rpc_path and not any(rpc_path in line for line in caplog.messages)
    assert any(line.endswith(f"POST {sandbox.url}/...") for line in attempts), attempts
    assert any(line.endswith(f"POST {sandbox.url}/v1/confidential/chat/completions") for line in attempts)


@pytest.mark.parametrize(
    ("url", "path", "shown"),
    [
        ("https://rpc.example/v1/secret-api-key", "", "https://rpc.example/..."),
        ("https://rpc.example", "", "https://rpc.example"),
        ("http://127.0.0.1:8080/", "", "http://127.0.0.1:8080"),
        (
            "https://api.atoma.network/v1/chat/completions",
            "/v1/chat/completions",
            "https://api.atoma.network/v1/chat/completions",
        ),
        (
            "https://gw.example/key-123/v1/chat/completions",
            "/v1/chat/completions",
            "https://gw.example/.../v1/chat/completions",
        ),
        ("https://user:pw@[::1]:9/x", "", "https://[::1]:9/..."),
    ],
)
def test_shown_url_hides_a_base_path_and_credentials(url: str, path: str, shown: str) -> None:
    assert shown_url(url, path) == shown


def test_the_sync_face_takes_a_verifier_and_raises_the_refusal() -> None:
    from atoma_core.testing import sandbox_in_thread
    from atoma_funcs import AtomaSyncSDK

    with sandbox_in_thread() as sandbox:
        verifier = on_chain(sandbox)
        with AtomaSyncSDK(TOKEN, sandbox.url, node_key_verifier=verifier) as sdk:
            assert sdk.confidential_chat.create(REQUEST).choices[0].message.content == f"You said: {SECRET}"
        sandbox.script(faults.substitute_key())
        refusal = pytest.raises(errors.NodeKeyVerificationError)
        with AtomaSyncSDK(TOKEN, sandbox.url, node_key_verifier=verifier) as sdk, refusal as caught:
            sdk.confidential_chat.create(REQUEST)
        assert caught.value.reason == "mismatch" and sealed_posts(sandbox) == 1  # the honest call's


async def test_a_cached_lock_is_checked_again_once_its_check_expires(sandbox: Sandbox) -> None:
    assert sandbox.node is not None
    async with verified_core(sandbox, on_chain(sandbox, ttl=0)) as core:
        (await confidential_chat_create(core, REQUEST)).unwrap()
        sandbox.sui.rotate(0xBEEF)  # rotation 4: the node has not committed its key yet
        res = await confidential_chat_create(core, REQUEST)
        assert isinstance(res.error, errors.NodeKeyVerificationError) and res.error.reason == "no_commitment"
        assert sealed_posts(sandbox) == 1  # only the first call's
        sandbox.sui.commit(1, sandbox.node.key)  # now it has
        (await confidential_chat_create(core, REQUEST)).unwrap()
    assert locks(sandbox) == 2  # the lock whose check failed was dropped


async def test_a_core_with_its_own_session_lends_it_to_the_rpc(sandbox: Sandbox) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with verified_core(sandbox, on_chain(sandbox), session=session) as core:
            (await confidential_chat_create(core, REQUEST)).unwrap()
        assert len(sandbox.sui.requests) == 3 and not session.closed


async def test_a_short_deadline_first_caller_does_not_fail_the_shared_check_for_others(
    sandbox: Sandbox,
) -> None:
    sandbox.sui.script(faults.delay(0.4))  # the check outlives the first caller's deadline
    assert sandbox.node is not None
    verifier = on_chain(sandbox)
    async with AtomaCore(TOKEN, sandbox.url) as core:
        hurried = asyncio.ensure_future(
            verifier.verify_node_key(core, 1, sandbox.node.key, RequestOptions(timeout_ms=150))
        )
        await asyncio.sleep(0.05)
        patient = await verifier.verify_node_key(core, 1, sandbox.node.key)
        refusal = await hurried
    assert isinstance(refusal, Err) and refusal.error.reason == "unavailable"
    assert patient == Ok(None) and len(sandbox.sui.requests) == 3  # one check, shared


async def test_a_short_deadline_first_call_does_not_fail_the_check_for_the_calls_sharing_it(
    vcore: AtomaCore, sandbox: Sandbox
) -> None:
    sandbox.sui.script(faults.delay(0.4))
    first = asyncio.ensure_future(confidential_chat_create(vcore, REQUEST, RequestOptions(timeout_ms=250)))
    await asyncio.sleep(0.05)
    second = await confidential_chat_create(vcore, REQUEST)
    assert isinstance((await first).error, (errors.RequestTimeoutError, errors.NodeKeyVerificationError))
    assert second.ok and locks(sandbox) == 1 and sealed_posts(sandbox) == 1


async def test_a_huge_rpc_error_code_is_not_copied_into_the_refusal(sandbox: Sandbox) -> None:
    huge = '{"jsonrpc": "2.0", "id": 1, "error": {"code": "%s", "message": "m"}}' % ("x" * MiB)
    sandbox.sui.script(faults.non_json(huge, content_type="application/json"))
    async with verified_core(sandbox, on_chain(sandbox)) as core:
        error = await refused(core, sandbox, "unavailable")
    assert "answered error 'xxx" in error.message and len(error.message) < 300


async def test_a_hung_evidence_check_fails_closed_within_the_verifiers_timeout(sandbox: Sandbox) -> None:
    cancelled = asyncio.Event()

    async def hangs(commitment: KeyCommitment) -> bool:
        try:
            await asyncio.sleep(3600)  # an attestation service that never answers
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return True

    async with verified_core(sandbox, on_chain(sandbox, check_evidence=hangs, timeout=0.3)) as core:
        started = time.monotonic()
        error = await refused(core, sandbox, "unavailable")
        elapsed = time.monotonic() - started
    assert "evidence check" in error.message and elapsed < 3.0 and cancelled.is_set()
