"""The node side of confidential compute, for the sandbox: what atoma-node does inside its TEE.

A `SandboxNode` holds its own X25519 key (its public half goes out in the `/v1/nodes/lock`
answer), opens sealed requests (checking `plaintext_body_hash`) and seals answers and stream
events as `{ciphertext, nonce, response_hash, signature, usage?}`, with `usage` left in clear as
atoma-node keeps it (atoma-node PR #502). `tamper_ciphertext` and `wrong_response_hash` spoil a
sealed message for fault tests. The cryptography itself is the SDK's own (`atoma_core._crypto`).
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

import msgspec

from .._crypto import SALT_SIZE, ResponseKey, b64, blake2b_256, derive_key, unb64
from .._crypto import private_key as new_private_key
from ..errors import ConfidentialComputeError
from ..models.confidential import ConfidentialComputeRequest, ConfidentialComputeResponse

__all__ = ["OpenedRequest", "SandboxNode", "tamper_ciphertext", "wrong_response_hash"]


class OpenedRequest(NamedTuple):
    """A decrypted confidential request: the envelope, the plain JSON bytes, the key to answer with."""

    request: ConfidentialComputeRequest
    plaintext: bytes
    key: ResponseKey


class SandboxNode:
    """One confidential node: its key pair, and the open/seal steps of atoma-node.

    `private_key` (32 raw bytes) fixes the key for reproducible tests; by default a fresh one is
    drawn. The private key never shows in a repr.
    """

    def __init__(self, private_key: bytes | None = None, *, node_small_id: int = 1) -> None:
        self._private = new_private_key(private_key)
        self._public_raw = self._private.public_key().public_bytes_raw()
        self.public_key = b64(self._public_raw)
        self.node_small_id = node_small_id

    def __repr__(self) -> str:
        return f"SandboxNode(node_small_id={self.node_small_id}, public_key={self.public_key!r})"

    @property
    def key(self) -> bytes:
        """The raw 32 bytes of the public key (what the node commits on chain)."""
        return self._public_raw

    def lock_response(self, stack_small_id: int) -> dict[str, Any]:
        """The body of a `/v1/nodes/lock` answer that points clients at this node."""
        return {
            "node_small_id": self.node_small_id,
            "public_key": self.public_key,
            "stack_small_id": stack_small_id,
        }

    def open_request(self, body: Mapping[str, Any] | bytes | ConfidentialComputeRequest) -> OpenedRequest:
        """Decrypt a sealed request and check its `plaintext_body_hash`.

        Raises `ConfidentialComputeError` ("key" when it was sealed for another node's key,
        "encoding", "tag", "hash"), and `msgspec.ValidationError` for a body of the wrong shape.
        """
        request = _as_request(body)
        # The same text as this node's key is the same key; other text may still be (base64 with
        # non-zero pad bits decodes to the same bytes), so only then is it decoded and compared.
        if (
            request.node_dh_public_key != self.public_key
            and unb64(request.node_dh_public_key, "node public key") != self._public_raw
        ):
            raise ConfidentialComputeError("the request was sealed for another node's key", reason="key")
        salt = unb64(request.salt, "salt")
        if len(salt) != SALT_SIZE:
            raise ConfidentialComputeError(f"the salt is not {SALT_SIZE} bytes", reason="encoding")
        key = derive_key(self._private, unb64(request.client_dh_public_key, "client public key"), salt)
        plaintext = key.open(request.ciphertext, request.nonce, request.plaintext_body_hash)
        return OpenedRequest(request, plaintext, key)

    def seal(
        self, key: ResponseKey, message: Mapping[str, Any] | bytes, *, usage: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Seal one answer or stream event: a JSON object (its `usage` is copied out in clear) or bytes."""
        if isinstance(message, Mapping):
            usage = message.get("usage") if usage is None else usage
            message = msgspec.json.encode(message)
        sealed: dict[str, Any] = msgspec.to_builtins(_signed(key.seal(message)))
        if usage is not None:
            sealed["usage"] = dict(usage)
        return sealed

    def seal_event(self, key: ResponseKey, data: bytes) -> bytes:
        """One stream event's `data:` payload sealed, as the JSON bytes to send: what `seal` gives,
        written straight from the sealed Struct (no dict, no second encoder)."""
        return _encode(_signed(key.seal(data)))


def tamper_ciphertext(sealed: Mapping[str, Any], index: int = 0) -> dict[str, Any]:
    """A copy of a sealed message with one ciphertext bit flipped: opening it must fail ("tag")."""
    raw = bytearray(unb64(sealed["ciphertext"], "ciphertext"))
    raw[index] ^= 0x01
    return {**sealed, "ciphertext": b64(bytes(raw))}


def wrong_response_hash(sealed: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a sealed message whose `response_hash` belongs to other bytes ("hash")."""
    raw = bytearray(unb64(sealed["response_hash"], "response hash"))
    raw[0] ^= 0x01
    return {**sealed, "response_hash": b64(bytes(raw))}


def _as_request(body: Mapping[str, Any] | bytes | ConfidentialComputeRequest) -> ConfidentialComputeRequest:
    if isinstance(body, ConfidentialComputeRequest):
        return body
    if isinstance(body, (bytes, bytearray)):
        return msgspec.json.decode(body, type=ConfidentialComputeRequest)
    return msgspec.convert(body, ConfidentialComputeRequest)


def _signed(sealed: ConfidentialComputeResponse) -> ConfidentialComputeResponse:
    """The sealed message with its signature: a stand-in for the node's Sui signature over the
    response hash (base64, like the real one)."""
    digest = sealed.response_hash or ""  # `ResponseKey.seal` always sets it
    sealed.signature = b64(b"sandbox-signature:" + blake2b_256(digest.encode()))
    return sealed


_encode = msgspec.json.Encoder().encode
