"""The official implementation (atoma-sdk 0.1.3, `atoma_sdk.crypto_utils`) at the other end of the
interoperability tests in tests/test_crypto.py.

Run by the atoma-sdk venv's Python (made by `benchmarks.run.ensure_atoma_venv`, since atoma-sdk pins
pydantic ~2.10), never imported by pytest. Reads one JSON job on stdin, prints one JSON answer:

- `{"op": "kat"}`: the known-answer vectors, made by `crypto_utils.encrypt_message` itself (its
  randomness pinned, its node lock answered by a local server) and `derive_key`/`calculate_hash`.
- `{"op": "node", "node_private_key", "request", "replies"}`: open a request sealed by our SDK with
  `decrypt_message` (X25519 is symmetric, so the node's private key and the client's public key
  give the same key) and seal `replies` for our SDK to open.
- `{"op": "client", "server_url", "content"}`: the official client's `confidential_chat.create` and
  `create_stream` against our SandboxNode behind a local server; prints what it decrypted.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
import types
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from atoma_sdk import AtomaSDK, crypto_utils, models
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# The known-answer inputs: RFC 7748 section 6.1's key pairs (client = Alice, node = Bob).
KAT_CLIENT = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
KAT_NODE = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
KAT_SALT = bytes(range(16))
KAT_NONCE = bytes(range(100, 112))
KAT_REPLY_NONCE = bytes(range(200, 212))
KAT_REPLY = b'{"choices":[{"index":0,"message":{"role":"assistant","content":"Hello, client."},"finish_reason":"stop"}]}'


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def raw_public(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes_raw()


def seal_reply(
    node: X25519PrivateKey, client_public: bytes, salt: bytes, reply: bytes, nonce: bytes
) -> dict[str, Any]:
    """What atoma-node sends, built from the official helpers (the SDK has no node side)."""
    key = crypto_utils.derive_key(node.exchange(X25519PublicKey.from_public_bytes(client_public)), salt)
    return {
        "ciphertext": b64(AESGCM(key).encrypt(nonce, reply, None)),
        "nonce": b64(nonce),
        "response_hash": b64(crypto_utils.calculate_hash(reply)),
    }


def kat(_: dict[str, Any]) -> dict[str, Any]:
    node = X25519PrivateKey.from_private_bytes(bytes.fromhex(KAT_NODE))
    lock = {"node_small_id": 1, "public_key": b64(raw_public(node)), "stack_small_id": 7}
    server = serve_lock(lock)
    draws = iter([KAT_SALT, KAT_NONCE])  # encrypt_message draws the salt, then the nonce
    real_secrets = crypto_utils.secrets
    crypto_utils.secrets = types.SimpleNamespace(
        token_bytes=lambda n: next(draws), compare_digest=real_secrets.compare_digest
    )
    try:
        sdk = AtomaSDK(bearer_auth="kat", server_url=f"http://127.0.0.1:{server.server_port}")
        body = models.CreateChatCompletionRequest(
            model="m", messages=[{"role": "user", "content": "Hello, node."}], max_tokens=64
        )
        client = X25519PrivateKey.from_private_bytes(bytes.fromhex(KAT_CLIENT))
        node_public, salt, request = crypto_utils.encrypt_message(sdk, client, body, "m")
    finally:
        crypto_utils.secrets = real_secrets
        server.shutdown()
    sealed = seal_reply(node, raw_public(client), salt, KAT_REPLY, KAT_REPLY_NONCE)
    assert (
        crypto_utils.decrypt_message(client, node_public, salt, models.ConfidentialComputeResponse(**sealed))
        == KAT_REPLY
    )
    return {
        "plaintext": body.model_dump_json(),
        "request": json.loads(request.model_dump_json()),
        "reply": sealed,
    }


def node(job: dict[str, Any]) -> dict[str, Any]:
    node_key = X25519PrivateKey.from_private_bytes(base64.b64decode(job["node_private_key"]))
    request = job["request"]
    client_public = base64.b64decode(request["client_dh_public_key"])
    salt = base64.b64decode(request["salt"])
    as_response = models.ConfidentialComputeResponse(
        ciphertext=request["ciphertext"], nonce=request["nonce"], response_hash=request["plaintext_body_hash"]
    )
    plaintext = crypto_utils.decrypt_message(
        node_key, X25519PublicKey.from_public_bytes(client_public), salt, as_response
    )
    replies = [
        seal_reply(
            node_key,
            client_public,
            salt,
            reply.encode(),
            crypto_utils.secrets.token_bytes(crypto_utils.NONCE_SIZE),
        )
        for reply in job["replies"]
    ]
    return {"plaintext": plaintext.decode(), "replies": replies}


def client(job: dict[str, Any]) -> dict[str, Any]:
    messages = [{"role": "user", "content": job["content"]}]
    with AtomaSDK(bearer_auth="interop", server_url=job["server_url"]) as sdk:
        answer = sdk.confidential_chat.create(model="m", messages=messages)
        pieces = [
            event.data.choices[0].delta.content or ""
            for event in sdk.confidential_chat.create_stream(model="m", messages=messages)
            if event is not None
        ]
    return {"content": answer.choices[0].message.content, "streamed": "".join(pieces)}


def serve_lock(lock: dict[str, Any]) -> HTTPServer:
    """A one-route server answering the official client's `POST /v1/nodes/lock`."""
    body = json.dumps(lock).encode()

    class Lock(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Lock)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


if __name__ == "__main__":
    job = json.load(sys.stdin)
    json.dump({"kat": kat, "node": node, "client": client}[job["op"]](job), sys.stdout)
