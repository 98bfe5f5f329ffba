"""Confidential-compute cryptography: known answers, round trips with the sandbox's node, typed
failures, redaction, the missing extra. The official SDK's side is in test_crypto_interop.py."""

from __future__ import annotations

import base64
import random
import subprocess
import sys
import textwrap
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from atoma_core._compute_units import num_compute_units
from atoma_core._crypto import Ephemeral, ResponseKey, b64, private_key, public_key_b64, seal_request
from atoma_core.errors import (
    ConfidentialComputeError,
    MissingDependencyError,
    ResponseValidationError,
    StreamInterruptedError,
)
from atoma_core.models import (
    ChatCompletionChunk,
    ConfidentialComputeRequest,
    ConfidentialComputeResponse,
    NodesCreateLockRequest,
    NodesCreateLockResponse,
)
from atoma_core.testing import SandboxNode, tamper_ciphertext, wrong_response_hash

from .test_imports import imported_modules

# Known answers. Inputs: RFC 7748 section 6.1's key pairs (client = Alice, node = Bob), salt
# 00..0f, request nonce 64..6f, reply nonce c8..d3. The expected bytes were produced by the
# official implementation, atoma-sdk 0.1.3: `crypto_utils.encrypt_message` (its randomness pinned
# to these values, its node lock answered locally) for the request, and its `derive_key` and
# `calculate_hash` with AESGCM (checked by its `decrypt_message`) for the reply. Reproduce with
# `python tests/official_peer.py <<< '{"op": "kat"}'` in the atoma-sdk venv;
# test_crypto_interop.py re-runs that and compares it to these constants.
KAT_CLIENT = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
KAT_NODE = bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
KAT_SALT = bytes(range(16))
KAT_NONCE = bytes(range(100, 112))
KAT_REPLY_NONCE = bytes(range(200, 212))
KAT_PLAINTEXT = (
    b'{"messages":[{"content":"Hello, node.","role":"user"}],"model":"m","max_tokens":64,"stream":false}'
)
KAT_REQUEST = {
    "ciphertext": "C33oBlAkaWVDJ8UEifITJhGCaraWY/ukT+Jg9U0gEpsdPhMj6pNbNa7XBxv7R5Z+lrPQEeDyk5kp8K2iFRS/xeT3KFGxDzTtckZ50FjY1L1ZROSAkDkCx+Ywfj/PGC4hRZNbigVpfLNHVHVEv2tmZPAf",
    "client_dh_public_key": "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=",
    "model_name": "m",
    "node_dh_public_key": "3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08=",
    "nonce": "ZGVmZ2hpamtsbW5v",
    "plaintext_body_hash": "DtaSeuySN2GoyMY9f4FEA6ltQVUy3XZ3Vi6p+qdCqO0=",
    "salt": "AAECAwQFBgcICQoLDA0ODw==",
    "stack_small_id": 7,
    "num_compute_units": 64,
    "stream": False,
}
KAT_REPLY = b'{"choices":[{"index":0,"message":{"role":"assistant","content":"Hello, client."},"finish_reason":"stop"}]}'
KAT_SEALED_REPLY = {
    "ciphertext": "TeIHuyCL2Mqf+xrU7WzHuCnc3sABEg3Ip9jsPt64FMBC/RI0tH4bt/5mJpwrNDJ/4VnI2BGxrB9k/KzKDcyK4OUxecnfoBQ0d0W127HiGhXVufFXzcdMNlOA0v8J2CtNAzawE0o6YYQgDVkOcSzjrHkQIvrKwEkDdvg=",
    "nonce": "yMnKy8zNzs/Q0dLT",
    "response_hash": "qGcf04Is6F7WZXe7Gurw5bLfiK8CxX/VJ7ko8rGnvgk=",
}
# RFC 7748's public keys, so the key pairs above are the ones the RFC documents.
RFC7748_ALICE_PUBLIC = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
RFC7748_BOB_PUBLIC = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
CHUNK = {"id": "c1", "choices": [{"index": 0, "delta": {"content": "secret answer"}}], "usage": None}


def kat_seal() -> tuple[ConfidentialComputeRequest, ResponseKey]:
    return seal_request(
        public_key_b64(private_key(KAT_NODE)),
        KAT_PLAINTEXT,
        model="m",
        stack_small_id=7,
        num_compute_units=64,
        stream=False,
        ephemeral=Ephemeral(private_key(KAT_CLIENT), KAT_SALT, KAT_NONCE),
    )


def sealed_pair(
    node: SandboxNode, plaintext: bytes = b'{"model":"m"}'
) -> tuple[ConfidentialComputeRequest, ResponseKey, ResponseKey]:
    """A request sealed by the client and opened by the node: (request, client key, node key)."""
    request, key = seal_request(node.public_key, plaintext, model="m", stack_small_id=1, stream=True)
    return request, key, node.open_request(msgspec.to_builtins(request)).key


# ------------------------------------------------------------------------------ known answers


def test_known_answer_keys_are_rfc7748s() -> None:
    assert base64.b64decode(public_key_b64(private_key(KAT_CLIENT))).hex() == RFC7748_ALICE_PUBLIC
    assert base64.b64decode(public_key_b64(private_key(KAT_NODE))).hex() == RFC7748_BOB_PUBLIC


def test_known_answer_request_is_the_official_sdks_bytes() -> None:
    request, _ = kat_seal()
    assert msgspec.to_builtins(request) == KAT_REQUEST


def test_known_answer_reply_opens_and_seals_to_the_official_bytes() -> None:
    _, key = kat_seal()
    assert key.open(**KAT_SEALED_REPLY) == KAT_REPLY
    opened = SandboxNode(KAT_NODE).open_request(KAT_REQUEST)
    assert opened.plaintext == KAT_PLAINTEXT
    assert msgspec.to_builtins(opened.key.seal(KAT_REPLY, KAT_REPLY_NONCE)) == KAT_SEALED_REPLY


def test_the_hand_hkdf_is_rfc5869s_and_cryptographys_byte_for_byte() -> None:
    from cryptography.hazmat.primitives.hashes import SHA256
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    from atoma_core._hkdf import hkdf_sha256

    # RFC 5869 test case 3 (SHA-256, empty salt and info): the first 32 bytes of its OKM
    okm = "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    assert hkdf_sha256(b"", bytes([0x0B] * 22)).hex() == okm[:64]
    rng = random.Random(23)
    for n in range(3000):  # salts of 0-149 bytes (longer than a SHA-256 block too), keys of 32-71
        salt, ikm = rng.randbytes(n % 150), rng.randbytes(32 + n % 40)
        assert hkdf_sha256(salt, ikm) == HKDF(algorithm=SHA256(), length=32, salt=salt, info=b"").derive(ikm)


def test_the_fast_key_maker_makes_cryptographys_keys() -> None:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from atoma_core._crypto import _private_key_maker

    key = _private_key_maker()(KAT_CLIENT)
    assert isinstance(key, X25519PrivateKey)
    assert key.public_key().public_bytes_raw().hex() == RFC7748_ALICE_PUBLIC
    assert key.private_bytes_raw() == KAT_CLIENT


# -------------------------------------------------------------------------------- round trips


def test_client_and_sandbox_node_round_trip_a_stream_with_usage_in_clear() -> None:
    node = SandboxNode()
    request, key = seal_request(
        node.public_key, b'{"model":"m","stream":true}', model="m", stack_small_id=4, stream=True
    )
    wire = msgspec.json.decode(msgspec.json.encode(request))
    assert wire["stream"] is True and "num_compute_units" not in wire
    opened = node.open_request(msgspec.json.encode(request))
    assert opened.plaintext == b'{"model":"m","stream":true}' and opened.request.stack_small_id == 4

    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    events = [node.seal(opened.key, {**CHUNK, "id": f"c{i}"}) for i in range(3)]
    events.append(node.seal(opened.key, {"id": "u", "choices": [], "usage": usage}))
    assert len({e["nonce"] for e in events}) == 4  # a fresh nonce per event
    assert all(e["signature"] and "usage" not in e for e in events[:3]) and events[3]["usage"] == usage
    for i, event in enumerate(events[:3]):
        decoded = msgspec.json.decode(key.open(event["ciphertext"], event["nonce"], event["response_hash"]))
        assert decoded["id"] == f"c{i}" and decoded["choices"][0]["delta"]["content"] == "secret answer"
    reply = msgspec.json.decode(msgspec.json.encode(events[3]), type=ConfidentialComputeResponse)
    assert reply.usage is not None and reply.usage.total_tokens == 5


def test_every_request_gets_fresh_keys_salt_and_nonce() -> None:
    node = SandboxNode()
    one, _ = seal_request(node.public_key, b"same", model="m", stack_small_id=1)
    two, _ = seal_request(node.public_key, b"same", model="m", stack_small_id=1)
    for field in ("client_dh_public_key", "salt", "nonce", "ciphertext"):
        assert getattr(one, field) != getattr(two, field), field
    assert one.plaintext_body_hash == two.plaintext_body_hash  # the plaintext is the same


def test_a_reply_without_hash_still_opens_and_bytes_seal_too() -> None:
    node = SandboxNode()
    _, key, node_key = sealed_pair(node)
    sealed = node.seal(node_key, b"raw bytes", usage={"prompt_tokens": 1, "total_tokens": 1})
    assert key.open(sealed["ciphertext"], sealed["nonce"]) == b"raw bytes"
    assert sealed["usage"] == {"prompt_tokens": 1, "total_tokens": 1}


# --------------------------------------------------------------------------- typed failures


def assert_no_secret_leaks(error: ConfidentialComputeError, *secrets: bytes) -> None:
    assert isinstance(error, ResponseValidationError) and error.raw == b""
    text = str(error) + repr(error) + repr(error.__cause__)
    for secret in secrets:
        for form in (secret.decode(errors="replace"), secret.hex(), b64(secret)):
            assert form not in text


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        (tamper_ciphertext, "tag"),  # a ciphertext bit
        (lambda sealed: tamper_ciphertext(sealed, -1), "tag"),  # a bit of the GCM tag
        (wrong_response_hash, "hash"),
    ],
)
def test_a_spoiled_event_fails_without_handing_out_the_plaintext(
    spoil: Callable[[dict[str, Any]], dict[str, Any]], reason: str
) -> None:
    node = SandboxNode()
    _, key, node_key = sealed_pair(node)
    bad = spoil(node.seal(node_key, CHUNK))
    with pytest.raises(ConfidentialComputeError) as caught:
        key.open(bad["ciphertext"], bad["nonce"], bad["response_hash"])
    assert caught.value.reason == reason
    assert_no_secret_leaks(caught.value, b"secret answer")


def test_a_reply_sealed_for_another_request_fails() -> None:
    node = SandboxNode()
    _, key, _ = sealed_pair(node)
    _, _, other_node_key = sealed_pair(node)
    sealed = node.seal(other_node_key, CHUNK)
    with pytest.raises(ConfidentialComputeError) as caught:
        key.open(sealed["ciphertext"], sealed["nonce"], sealed["response_hash"])
    assert caught.value.reason == "tag"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"nonce": b64(b"short")}, "encoding"),
        ({"nonce": "not base64!"}, "encoding"),
        ({"ciphertext": "A"}, "encoding"),
        ({"response_hash": "é"}, "encoding"),
    ],
)
def test_malformed_fields_are_typed_failures(change: dict[str, str], reason: str) -> None:
    node = SandboxNode()
    _, key, node_key = sealed_pair(node)
    sealed = {**node.seal(node_key, CHUNK), **change}
    with pytest.raises(ConfidentialComputeError) as caught:
        key.open(sealed["ciphertext"], sealed["nonce"], sealed["response_hash"])
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"nonce": b64(b"short")}, "encoding"),
        ({"nonce": "not base64!"}, "encoding"),
        ({"ciphertext": "A"}, "encoding"),
        ({"response_hash": "é"}, "encoding"),
        ({"ciphertext": b64(b"x" * 40)}, "tag"),
        ({"response_hash": b64(bytes(32))}, "hash"),
    ],
)
def test_the_stream_decoder_types_each_failure_first_and_later(change: dict[str, str], reason: str) -> None:
    """The same failures through a stream's decoder (the envelope's base64 decoded by msgspec):
    `ConfidentialComputeError` on the first event, `StreamInterruptedError` once one opened."""
    node = SandboxNode()
    _, key, node_key = sealed_pair(node)
    decode = msgspec.json.Decoder(ChatCompletionChunk).decode
    bad = msgspec.json.encode({**node.seal(node_key, CHUNK), **change})
    with pytest.raises(ConfidentialComputeError) as first:
        key.stream_decoder(decode)(bad)
    assert first.value.reason == reason
    later = key.stream_decoder(decode)
    assert later(msgspec.json.encode(node.seal(node_key, CHUNK))).choices
    with pytest.raises(StreamInterruptedError) as caught:
        later(bad)
    assert "could not be opened" in caught.value.message and "secret answer" not in str(caught.value)
    assert_no_secret_leaks(first.value, b"secret answer")
    with pytest.raises(msgspec.ValidationError):  # not a sealed message: the stream reads the error in it
        later(b'{"error": {"code": "X", "message": "m"}}')
    with pytest.raises(msgspec.DecodeError):  # [DONE] and the like: left to the stream
        later(b"[DONE]")


def test_the_stream_decoder_lets_go_of_its_cipher_between_reads_and_still_opens() -> None:
    """`release()` (the event stream calls it after each read) drops the AES-GCM context; the next
    event rebuilds it, and a replay across the release is still caught."""
    node = SandboxNode()
    _, key, node_key = sealed_pair(node)
    decode = key.stream_decoder(msgspec.json.Decoder(ChatCompletionChunk).decode)
    first = msgspec.json.encode(node.seal(node_key, CHUNK))
    assert decode(first).choices[0].delta.content == "secret answer"
    decode.release()  # type: ignore[attr-defined]
    assert decode(msgspec.json.encode(node.seal(node_key, CHUNK))).choices
    decode.release()  # type: ignore[attr-defined]
    with pytest.raises(StreamInterruptedError, match="replayed"):
        decode(first)


def test_an_answer_handed_over_as_a_bytearray_is_decrypted_into_its_own_memory() -> None:
    """`json_response` hands a body read in pieces over as a bytearray in a one-item list: the
    plaintext is written over the body (no fresh buffer), and it opens and decodes as bytes do.
    A tampered one fails the tag; one whose plaintext does not decode reports `raw` b"" (the
    body holds plaintext by then) and nothing of the plaintext."""
    node = SandboxNode()
    _, key, node_key = sealed_pair(node)
    answer = {**CHUNK, "object": "chat.completion.chunk"}
    plaintext = msgspec.json.encode(answer)
    body = bytearray(msgspec.json.encode(node.seal(node_key, answer)))
    decode = msgspec.json.Decoder(ChatCompletionChunk).decode
    handed = [body]
    assert key.open_answer(handed, decode).choices[0].delta.content == "secret answer"
    assert handed == [] and body[: len(plaintext)] == plaintext  # decrypted in place of the body

    tampered = bytearray(msgspec.json.encode(tamper_ciphertext(node.seal(node_key, answer))))
    with pytest.raises(ConfidentialComputeError) as failed:
        key.open_answer([tampered], decode)
    assert failed.value.reason == "tag"

    secret = b"secret plaintext that is not JSON"
    with pytest.raises(ResponseValidationError) as caught:
        key.open_answer([bytearray(msgspec.json.encode(node.seal(node_key, secret)))], decode)
    assert_no_secret_leaks(caught.value, secret)  # raw == b"" included
    assert not isinstance(caught.value, ConfidentialComputeError)


def test_the_stream_decoder_catches_a_replay_of_any_earlier_event_as_its_table_grows() -> None:
    """The replay table (nonce hashes, open addressing) grows from 16 slots as events come:
    3,000 distinct events all open, and every earlier one sent again is caught, the first and
    the last included; a replay that failed is not remembered, so nothing else goes wrong."""
    node = SandboxNode()
    _, key, node_key = sealed_pair(node)
    decode = key.stream_decoder(msgspec.json.Decoder(ChatCompletionChunk).decode)
    events = [msgspec.json.encode(node.seal(node_key, CHUNK)) for _ in range(3000)]
    for event in events:
        assert decode(event).choices[0].delta.content == "secret answer"
    for event in (events[0], events[1], events[1499], events[-1], events[-1]):
        with pytest.raises(StreamInterruptedError, match="replayed"):
            decode(event)
    assert decode(msgspec.json.encode(node.seal(node_key, CHUNK))).choices  # a fresh one still opens


@pytest.mark.parametrize(
    "node_key",
    [b64(b"\x01" * 31), b64(bytes(32)), ""],  # too short, the all-zero low-order point, empty
)
def test_a_bad_node_public_key_is_a_typed_failure(node_key: str) -> None:
    with pytest.raises(ConfidentialComputeError) as caught:
        seal_request(node_key, b"{}", model="m", stack_small_id=1)
    assert caught.value.reason == "key"


def test_the_node_refuses_requests_not_meant_for_it() -> None:
    node, other = SandboxNode(), SandboxNode()
    request, _ = seal_request(other.public_key, b"{}", model="m", stack_small_id=1)
    with pytest.raises(ConfidentialComputeError) as caught:
        node.open_request(request)
    assert caught.value.reason == "key"

    for change, reason in [
        ({"plaintext_body_hash": b64(bytes(32))}, "hash"),
        ({"salt": b64(b"short")}, "encoding"),
    ]:
        request, _ = seal_request(node.public_key, b"{}", model="m", stack_small_id=1)
        with pytest.raises(ConfidentialComputeError) as caught:
            node.open_request({**msgspec.to_builtins(request), **change})
        assert caught.value.reason == reason
    with pytest.raises(msgspec.ValidationError):
        node.open_request({"ciphertext": "AA=="})


# --------------------------------------------------------------------------------- redaction


def test_reprs_show_no_key_material() -> None:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
    from cryptography.hazmat.primitives.hashes import SHA256
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    _, key = kat_seal()
    node = SandboxNode(KAT_NODE)
    shared = private_key(KAT_CLIENT).exchange(
        X25519PublicKey.from_public_bytes(bytes.fromhex(RFC7748_BOB_PUBLIC))
    )
    aes_key = HKDF(algorithm=SHA256(), length=32, salt=KAT_SALT, info=b"").derive(shared)
    assert repr(key) == "ResponseKey(<redacted>)"
    text = repr(key) + str(key) + repr(node) + str(node)
    for secret in (aes_key, shared, KAT_CLIENT, KAT_NODE):
        assert secret.hex() not in text and b64(secret) not in text
    assert not hasattr(key, "__dict__")  # nothing for vars() or a debugger's default view to list


# --------------------------------------------------------------------- the optional extra


def test_without_cryptography_the_error_names_the_extra() -> None:
    script = textwrap.dedent(
        """
        import sys
        sys.modules["cryptography"] = None  # as if the extra were not installed
        from atoma_core import _crypto
        from atoma_core.errors import MissingDependencyError
        from atoma_core.testing import SandboxNode
        for attempt in (lambda: _crypto.seal_request("AA==", b"{}", model="m", stack_small_id=1),
                        lambda: _crypto.ResponseKey(bytes(32)), SandboxNode):
            try:
                attempt()
            except MissingDependencyError as e:
                assert (e.package, e.extra) == ("cryptography", "confidential"), e
                print(e)
            else:
                raise SystemExit("no error")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 3 and all('pip install "atoma-async[confidential]"' in line for line in lines)
    assert issubclass(MissingDependencyError, Exception)


@pytest.mark.parametrize(
    "statement", ["from atoma_funcs import chat_create", "from atoma_funcs import chat_create_stream"]
)
def test_plain_chat_never_imports_cryptography(statement: str) -> None:
    modules = imported_modules(statement)
    assert not {m for m in modules if m.startswith("cryptography")}
    assert not modules & {"atoma_core._crypto", "atoma_core.models.confidential", "atoma_core.testing._node"}


# --------------------------------------------------------------------- models and units


def test_models_omit_unset_fields_and_decode_leniently() -> None:
    request = ConfidentialComputeRequest(
        ciphertext="c", client_dh_public_key="k", node_dh_public_key="n", nonce="o", salt="s",
        plaintext_body_hash="h", model_name="m", stack_small_id=0,
    )  # fmt: skip
    assert "num_compute_units" not in msgspec.json.decode(msgspec.json.encode(request))
    reply = msgspec.json.decode(b'{"ciphertext":"c","nonce":"n","extra":1}', type=ConfidentialComputeResponse)
    assert (reply.response_hash, reply.signature, reply.usage) == (None, None, None)
    usage = b'{"ciphertext":"c","nonce":"n","usage":{"prompt_tokens":2,"total_tokens":2}}'
    assert msgspec.json.decode(usage, type=ConfidentialComputeResponse).usage.prompt_tokens == 2  # type: ignore[union-attr]
    assert msgspec.json.encode(NodesCreateLockRequest(model="m")) == b'{"model":"m"}'
    lock = msgspec.json.decode(
        b'{"node_small_id":1,"public_key":"k","stack_small_id":9,"new":0}', type=NodesCreateLockResponse
    )
    assert (lock.stack_small_id, lock.stack_entry_digest) == (9, None)
    assert SandboxNode(KAT_NODE).lock_response(9)["public_key"] == KAT_REQUEST["node_dh_public_key"]


@pytest.mark.parametrize(
    ("kind", "request_body", "units"),
    [
        ("chat", {"max_completion_tokens": 100, "max_tokens": 5}, 100),
        ("chat", {"max_tokens": 64}, 64),
        ("chat", {}, None),
        ("chat", {"max_tokens": True}, None),
        ("images", {"size": "512x256", "n": 2}, 262144),
        ("images", {"size": "1024x1024"}, 1048576),
        ("images", {"size": "large"}, None),
        ("images", {}, None),
        ("embeddings", {"max_tokens": 5}, None),
    ],
)
def test_num_compute_units(kind: str, request_body: dict[str, object], units: int | None) -> None:
    assert num_compute_units(kind, request_body) == units  # type: ignore[arg-type]
