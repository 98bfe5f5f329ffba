"""Confidential compute cryptography, byte for byte as the official Atoma SDKs and atoma-node do it.

Per request: a fresh X25519 key pair, a 16-byte salt and a 12-byte nonce. Both ends derive
key = HKDF-SHA256(X25519(own private, peer public), salt, info=b"", 32 bytes); the request and
every answer or stream event are AES-256-GCM (no AAD, tag appended) under that key, each with its
own nonce, and carry BLAKE2b-256 of their plaintext. Binary fields are standard base64.

The only module that imports `cryptography` (the `confidential` extra). Without it, every entry
point raises `MissingDependencyError` naming the extra; importing this module still works.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from binascii import Error as BinasciiError
from binascii import a2b_base64, b2a_base64
from typing import NamedTuple

from msgspec import UNSET

from .errors import ConfidentialComputeError, MissingDependencyError
from .models.confidential import ConfidentialComputeRequest, ConfidentialComputeResponse

_MISSING: ImportError | None = None
try:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.hashes import SHA256
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
except ImportError as exc:  # the extra is not installed: require_cryptography() says so
    _MISSING = exc

__all__ = [
    "Ephemeral",
    "NONCE_SIZE",
    "SALT_SIZE",
    "ResponseKey",
    "b64",
    "blake2b_256",
    "derive_key",
    "private_key",
    "public_key_b64",
    "require_cryptography",
    "seal_request",
    "unb64",
]

SALT_SIZE = 16
NONCE_SIZE = 12
KEY_SIZE = 32
INSTALL_HINT = 'pip install "atoma-async[confidential]"'


def require_cryptography() -> None:
    """Raise `MissingDependencyError` naming the extra when `cryptography` cannot be imported."""
    if _MISSING is not None:
        raise MissingDependencyError(
            f"confidential compute needs the cryptography package: {INSTALL_HINT}",
            package="cryptography",
            extra="confidential",
        ) from _MISSING


def b64(data: bytes) -> str:
    """Standard base64 with padding, as every confidential field is sent."""
    return b2a_base64(data, newline=False).decode("ascii")


def unb64(text: str, field: str) -> bytes:
    """Decode a base64 field; a malformed one is a typed failure naming the field, never its value."""
    try:
        return a2b_base64(text)
    except (BinasciiError, ValueError):
        raise ConfidentialComputeError(f"{field} is not valid base64", reason="encoding") from None


def blake2b_256(data: bytes) -> bytes:
    """The hash both ends put next to a ciphertext (`plaintext_body_hash`, `response_hash`)."""
    return hashlib.blake2b(data, digest_size=32).digest()


class ResponseKey:
    """The AES-256-GCM key both ends derive for one request.

    The client seals its request with it and opens the answer (or each stream event); the node
    does the reverse. One AESGCM object is built once and reused, so opening an event costs three
    small base64 decodes, one AES-GCM pass and one BLAKE2b. The key never shows in a repr.
    """

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        require_cryptography()
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "ResponseKey(<redacted>)"

    def open(self, ciphertext: str, nonce: str, response_hash: str | None = None) -> bytes:
        """Decrypt one sealed message and check its hash when one is given (in constant time).

        Raises `ConfidentialComputeError` ("encoding", "tag" or "hash"); nothing of a message
        that fails is returned.
        """
        raw_nonce = unb64(nonce, "nonce")
        if len(raw_nonce) != NONCE_SIZE:
            raise ConfidentialComputeError(f"the nonce is not {NONCE_SIZE} bytes", reason="encoding")
        try:
            plaintext = self._aead.decrypt(raw_nonce, unb64(ciphertext, "ciphertext"), None)
        except InvalidTag:
            raise ConfidentialComputeError(
                "the ciphertext failed authentication (tampered, or sealed under another key)",
                reason="tag",
            ) from None
        if response_hash is not None and not hmac.compare_digest(
            blake2b_256(plaintext), unb64(response_hash, "response hash")
        ):
            raise ConfidentialComputeError("the decrypted message does not match its hash", reason="hash")
        return plaintext

    def seal(self, plaintext: bytes, nonce: bytes | None = None) -> ConfidentialComputeResponse:
        """Encrypt one message under a fresh nonce (or the one given, for known-answer tests)."""
        ciphertext, used_nonce, digest = self._encrypt(plaintext, nonce)
        return ConfidentialComputeResponse(ciphertext=ciphertext, nonce=used_nonce, response_hash=digest)

    def _encrypt(self, plaintext: bytes, nonce: bytes | None) -> tuple[str, str, str]:
        """(ciphertext, nonce, BLAKE2b-256 of the plaintext), each in base64."""
        if nonce is None:
            nonce = os.urandom(NONCE_SIZE)
        ciphertext = self._aead.encrypt(nonce, plaintext, None)
        return b64(ciphertext), b64(nonce), b64(blake2b_256(plaintext))


def private_key(raw: bytes | None = None) -> X25519PrivateKey:
    """An X25519 private key: a fresh one, or the one whose 32 raw bytes are given (tests, the sandbox)."""
    require_cryptography()
    return X25519PrivateKey.generate() if raw is None else X25519PrivateKey.from_private_bytes(raw)


def public_key_b64(private: X25519PrivateKey) -> str:
    """The raw 32-byte public half of a key pair, in base64, as the wire carries it."""
    return b64(private.public_key().public_bytes_raw())


def derive_key(own_key: X25519PrivateKey, peer_public_key: bytes, salt: bytes) -> ResponseKey:
    """HKDF-SHA256 over the X25519 shared secret: the same key on both ends of one request."""
    require_cryptography()
    try:
        shared = own_key.exchange(X25519PublicKey.from_public_bytes(peer_public_key))
    except ValueError:  # not 32 bytes, or a low-order point giving an all-zero secret
        raise ConfidentialComputeError("a public key is not a usable X25519 key", reason="key") from None
    return ResponseKey(HKDF(algorithm=SHA256(), length=KEY_SIZE, salt=salt, info=b"").derive(shared))


class Ephemeral(NamedTuple):
    """The per-request secrets: the client's X25519 key, the HKDF salt, the request's nonce."""

    private_key: X25519PrivateKey
    salt: bytes
    nonce: bytes


def seal_request(
    node_public_key: str,
    plaintext: bytes,
    *,
    model: str,
    stack_small_id: int,
    num_compute_units: int | None = None,
    stream: bool | None = None,
    ephemeral: Ephemeral | None = None,
) -> tuple[ConfidentialComputeRequest, ResponseKey]:
    """Seal one request's JSON for the node whose key `/v1/nodes/lock` returned.

    Every call draws a fresh key pair, salt and nonce (`ephemeral` fixes them: known-answer
    tests only), so a resent request is a new ciphertext. `num_compute_units` and `stream` are
    omitted when None (`_compute_units` says what to send). Raises `MissingDependencyError`
    without the extra, `ConfidentialComputeError` for a bad node key. The key returned opens
    the answer.
    """
    if ephemeral is None:
        ephemeral = Ephemeral(private_key(), os.urandom(SALT_SIZE), os.urandom(NONCE_SIZE))
    node_key = unb64(node_public_key, "node public key")
    key = derive_key(ephemeral.private_key, node_key, ephemeral.salt)
    ciphertext, nonce, digest = key._encrypt(plaintext, ephemeral.nonce)
    request = ConfidentialComputeRequest(
        ciphertext=ciphertext,
        client_dh_public_key=public_key_b64(ephemeral.private_key),
        node_dh_public_key=b64(node_key),
        nonce=nonce,
        salt=b64(ephemeral.salt),
        plaintext_body_hash=digest,
        model_name=model,
        stack_small_id=stack_small_id,
        num_compute_units=UNSET if num_compute_units is None else num_compute_units,
        stream=UNSET if stream is None else stream,
    )
    return request, key
