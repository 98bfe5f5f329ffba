"""Confidential compute cryptography, byte for byte as the official Atoma SDKs and atoma-node do it.

Per request: a fresh X25519 key pair, a 16-byte salt and a 12-byte nonce. Both ends derive
key = HKDF-SHA256(X25519(own private, peer public), salt, info=b"", 32 bytes); the request and
every answer or stream event are AES-256-GCM (no AAD, tag appended) under that key, each with its
own nonce, and carry BLAKE2b-256 of their plaintext. Binary fields are standard base64.

The only module that imports `cryptography` (the `confidential` extra), with `_sealed_stream`
(a stream's event decoder, imported once a key exists). Without it, every entry point raises
`MissingDependencyError` naming the extra; importing this module still works.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
from binascii import Error as BinasciiError
from binascii import a2b_base64, b2a_base64
from typing import Callable, NamedTuple, TypeVar

import msgspec
from msgspec import UNSET, Struct, UnsetType

from ._hkdf import hkdf_sha256
from .errors import (
    ConfidentialComputeError,
    MissingDependencyError,
    ResponseValidationError,
)
from .models.confidential import ConfidentialComputeRequest, ConfidentialComputeResponse

_MISSING: ImportError | None = None
try:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
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
    "seal_body",
    "seal_request",
    "unb64",
]

T = TypeVar("T")

SALT_SIZE = 16
NONCE_SIZE = 12
KEY_SIZE = 32
_NONCE_AT = KEY_SIZE + SALT_SIZE
_FRESH = _NONCE_AT + NONCE_SIZE  # random bytes per request: private key, salt, nonce
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


def blake2b_256(data: bytes | memoryview) -> bytes:
    """The hash both ends put next to a ciphertext (`plaintext_body_hash`, `response_hash`)."""
    return hashlib.blake2b(data, digest_size=32).digest()


class _Sealed(Struct, gc=False):
    """A sealed answer or event as it is read: msgspec decodes the base64 fields straight to
    bytes while it parses (about 3x faster than `binascii` on a decoded str, and no str at all).
    `signature` and `usage` are left unread: nothing here uses them."""

    ciphertext: bytes
    nonce: bytes
    response_hash: bytes | None = None


class _SealedRequest(Struct, omit_defaults=True, kw_only=True, gc=False):
    """`ConfidentialComputeRequest` with its binary fields as bytes: msgspec base64-encodes them
    while it writes the body (the same JSON, without a str per field)."""

    ciphertext: bytes
    client_dh_public_key: bytes
    node_dh_public_key: bytes
    nonce: bytes
    salt: bytes
    plaintext_body_hash: bytes
    model_name: str
    stack_small_id: int
    num_compute_units: int | None | UnsetType = UNSET
    stream: bool | None | UnsetType = UNSET


_TOO_DEEP = "response JSON is nested too deeply to decode"
_TAG_SIZE = 16  # AES-GCM's tag, after the ciphertext
# `AESGCM.decrypt_into` (cryptography 45+): decrypt into a buffer of ours, no fresh bytes.
_DECRYPT_INTO = _MISSING is None and hasattr(AESGCM, "decrypt_into")
_read_sealed = msgspec.json.Decoder(_Sealed).decode
_read_envelope = msgspec.json.Decoder(ConfidentialComputeResponse).decode
_write = msgspec.json.Encoder().encode


def _bad_nonce() -> ConfidentialComputeError:
    return ConfidentialComputeError(f"the nonce is not {NONCE_SIZE} bytes", reason="encoding")


def _bad_key() -> ConfidentialComputeError:
    return ConfidentialComputeError("a public key is not a usable X25519 key", reason="key")


def _bad_tag() -> ConfidentialComputeError:
    message = "the ciphertext failed authentication (tampered, or sealed under another key)"
    return ConfidentialComputeError(message, reason="tag")


def _bad_hash() -> ConfidentialComputeError:
    return ConfidentialComputeError("the decrypted message does not match its hash", reason="hash")


def _where(exc: Exception) -> str:
    """Where in a decrypted message msgspec failed (`$.choices[0]`), without the value it saw:
    its messages may quote one (an unknown enum value), and that is plaintext."""
    at = str(exc).rpartition(" - at ")[2]
    return f" (at {at})" if at.startswith("`$") else ""


def _bad_envelope(data: bytes | bytearray, exc: msgspec.ValidationError) -> Exception:
    """What a sealed message that did not decode is: the right shape with a field that is not
    base64 (`ConfidentialComputeError`), or not a sealed message at all (the error itself, so an
    error object sent in its place is still read as one)."""
    try:
        _read_envelope(data)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return exc
    return ConfidentialComputeError(f"a sealed field is not valid base64{_where(exc)}", reason="encoding")


class ResponseKey:
    """The AES-256-GCM key both ends derive for one request.

    The client seals its request with it and opens the answer (or each stream event); the node
    does the reverse. One AESGCM object is built once and reused. The key never shows in a repr.
    """

    __slots__ = ("_aead", "_key")

    def __init__(self, key: bytes) -> None:
        require_cryptography()
        self._key = key
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "ResponseKey(<redacted>)"

    def open(self, ciphertext: str, nonce: str, response_hash: str | None = None) -> bytes:
        """Decrypt one sealed message given as its base64 fields, and check its hash when one is
        given (in constant time).

        Raises `ConfidentialComputeError` ("encoding", "tag" or "hash"); nothing of a message
        that fails is returned.
        """
        digest = None if response_hash is None else unb64(response_hash, "response hash")
        return self._open(unb64(ciphertext, "ciphertext"), unb64(nonce, "nonce"), digest)

    def _open(self, ciphertext: bytes, nonce: bytes, digest: bytes | None) -> bytes:
        if len(nonce) != NONCE_SIZE:
            raise _bad_nonce()
        try:
            plaintext = self._aead.decrypt(nonce, ciphertext, None)
        except InvalidTag:
            raise _bad_tag() from None
        if digest is not None and not hmac.compare_digest(blake2b_256(plaintext), digest):
            raise _bad_hash()
        return plaintext

    def open_answer(
        self,
        raw: bytes | list[bytes | bytearray],
        decode: Callable[[bytes | memoryview], T],
        status: int = 200,
    ) -> T:
        """A sealed answer's body (`{ciphertext, nonce, response_hash, ...}`), opened and decoded
        with `decode`. A body that is not a sealed message is a `ResponseValidationError` with the
        body as `raw`; one that cannot be opened a `ConfidentialComputeError`; plaintext that is
        not what `decode` wants a `ResponseValidationError` whose message holds no plaintext.

        The body may be handed over in a one-item list (`json_response` does): it is taken out
        and let go of once its envelope is read (below). Its `raw` is then b"" when the
        plaintext does not decode; else the sealed body."""
        handed = isinstance(raw, list)
        body = raw.pop() if isinstance(raw, list) else raw
        del raw
        try:
            sealed = _read_sealed(body)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            error = _bad_envelope(body, exc) if isinstance(exc, msgspec.ValidationError) else exc
            if isinstance(error, ConfidentialComputeError):
                raise error from None
            message = f"response does not match the schema: {error}"
            raise ResponseValidationError(message, raw=bytes(body), status_code=status) from None
        except RecursionError:  # msgspec's answer to JSON nested too deeply
            raise ResponseValidationError(_TOO_DEEP, raw=bytes(body), status_code=status) from None
        nonce, digest, ciphertext = sealed.nonce, sealed.response_hash, sealed.ciphertext
        del sealed
        if len(nonce) != NONCE_SIZE:
            raise _bad_nonce()
        # A body handed over is let go of here: the plaintext goes into its memory (a body joined
        # from pieces, writable) or reuses it once freed (bytes): no fresh pages either way (a
        # 1 MB answer: ~250 fewer page faults). What fails the tag is never read.
        size = len(ciphertext) - _TAG_SIZE
        into = None
        if handed and _DECRYPT_INTO and isinstance(body, bytearray) and 0 <= size <= len(body):
            into = memoryview(body)[:size]
        kept = b"" if handed else bytes(body)  # what a plaintext that does not decode reports as `raw`
        del body
        try:
            if into is None:
                plaintext: bytes | memoryview = self._aead.decrypt(nonce, ciphertext, None)
            else:
                self._aead.decrypt_into(nonce, ciphertext, None, into)
                plaintext = into
        except InvalidTag:
            into = None  # what failed the tag: not kept alive by the error's traceback
            raise _bad_tag() from None
        # Let go of the ciphertext before hashing and decoding: the plaintext's decode reuses its
        # memory instead of faulting in fresh pages (a 1 MB answer: ~1.4 ms less CPU).
        del ciphertext
        if digest is not None and not hmac.compare_digest(blake2b_256(plaintext), digest):
            raise _bad_hash()
        try:
            return decode(plaintext)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            what = "is not JSON" if isinstance(exc, msgspec.DecodeError) else "does not match the schema"
            message = f"the decrypted response {what}{_where(exc)}"
            raise ResponseValidationError(message, raw=kept, status_code=status) from None
        except RecursionError:
            message = f"the decrypted response: {_TOO_DEEP}"
            raise ResponseValidationError(message, raw=kept, status_code=status) from None

    def stream_decoder(self, decode: Callable[[bytes], T]) -> Callable[[bytes], T]:
        """The decoder of one stream's events (`data:` payloads): open each with this key, then
        `decode` the plaintext. A nonce seen before in this stream is a replayed event. An event
        that cannot be opened is a `ConfidentialComputeError` when it is the first, and ends the
        stream as `StreamInterruptedError` after; decrypted data that does not decode raises
        errors that hold none of it. Not a sealed message at all (an error object): the
        `msgspec.ValidationError`, for the stream to read the error in it."""
        from ._sealed_stream import event_decoder  # its own module: the per-event loop

        return event_decoder(self._key, self._aead, decode)

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


def _private_key_maker() -> Callable[[bytes], X25519PrivateKey]:
    """`X25519PrivateKey.from_private_bytes`, or the bindings' function it calls, when that can be
    found: the classmethod imports the backend and asks it whether X25519 is allowed (FIPS) on
    every call, ~7 us of cold interpreter per request in the event loop. Asked once here instead."""
    try:
        from cryptography.hazmat.backends.openssl.backend import backend
        from cryptography.hazmat.bindings._rust import openssl as rust_openssl

        if backend.x25519_supported():
            make: Callable[[bytes], X25519PrivateKey] = rust_openssl.x25519.from_private_bytes
            return make
    except (ImportError, AttributeError):  # another layout of cryptography: its public API
        pass
    return X25519PrivateKey.from_private_bytes


_private_from_bytes: Callable[[bytes], X25519PrivateKey] | None = None


def private_key(raw: bytes | None = None) -> X25519PrivateKey:
    """An X25519 private key: a fresh one, or the one whose 32 raw bytes are given (tests, the sandbox)."""
    require_cryptography()
    return X25519PrivateKey.generate() if raw is None else X25519PrivateKey.from_private_bytes(raw)


def public_key_b64(private: X25519PrivateKey) -> str:
    """The raw 32-byte public half of a key pair, in base64, as the wire carries it."""
    return b64(private.public_key().public_bytes_raw())


def _agree(own_key: X25519PrivateKey, peer: X25519PublicKey, salt: bytes) -> ResponseKey:
    try:
        shared = own_key.exchange(peer)
    except ValueError:  # a low-order point giving an all-zero secret
        raise _bad_key() from None
    return ResponseKey(hkdf_sha256(salt, shared))


def _peer_key(raw: bytes) -> X25519PublicKey:
    try:
        return X25519PublicKey.from_public_bytes(raw)
    except ValueError:  # not 32 bytes
        raise _bad_key() from None


def derive_key(own_key: X25519PrivateKey, peer_public_key: bytes, salt: bytes) -> ResponseKey:
    """HKDF-SHA256 over the X25519 shared secret: the same key on both ends of one request."""
    require_cryptography()
    return _agree(own_key, _peer_key(peer_public_key), salt)


@functools.lru_cache(maxsize=64)
def _node_key(node_public_key: str) -> tuple[X25519PublicKey, bytes]:
    """A node's key from its lock answer, parsed once per key (it is public, and a lock is reused
    for many requests): the key object and its raw bytes. A bad key raises every time."""
    raw = unb64(node_public_key, "node public key")
    return _peer_key(raw), raw


class Ephemeral(NamedTuple):
    """The per-request secrets: the client's X25519 key, the HKDF salt, the request's nonce."""

    private_key: X25519PrivateKey
    salt: bytes
    nonce: bytes


def seal_body(
    node_public_key: str,
    plaintext: bytes,
    *,
    model: str,
    stack_small_id: int,
    num_compute_units: int | None = None,
    stream: bool | None = None,
    ephemeral: Ephemeral | None = None,
) -> tuple[bytes, ResponseKey]:
    """`seal_request`, as the JSON body to send: what the request path uses on every attempt.

    Flat on purpose (one call, `_agree`, shared with `derive_key`): it runs once per attempt
    right after the event loop woke up, with the caches cold, where every call and every distinct
    piece of OpenSSL costs several times its warm price (benchmarks/profiles/confidential-small.md).
    The private key is made from 32 bytes of `os.urandom`, drawn with the salt and nonce in one
    system call (cheaper in the loop than `X25519PrivateKey.generate()` and its second trip
    through OpenSSL's generator).
    `ephemeral` fixes the key, salt and nonce, as for `seal_request` (known-answer tests only).
    """
    global _private_from_bytes
    require_cryptography()
    node_key, node_raw = _node_key(node_public_key)
    if ephemeral is None:
        make = _private_from_bytes
        if make is None:
            make = _private_from_bytes = _private_key_maker()
        fresh = os.urandom(_FRESH)  # the private key, the salt and the nonce: one system call
        own = make(fresh[:KEY_SIZE])
        salt, nonce = fresh[KEY_SIZE:_NONCE_AT], fresh[_NONCE_AT:]
        del fresh
    else:
        own, salt, nonce = ephemeral
    key = _agree(own, node_key, salt)
    request = _SealedRequest(
        ciphertext=key._aead.encrypt(nonce, plaintext, None),
        client_dh_public_key=own.public_key().public_bytes_raw(),
        node_dh_public_key=node_raw,
        nonce=nonce,
        salt=salt,
        plaintext_body_hash=blake2b_256(plaintext),
        model_name=model,
        stack_small_id=stack_small_id,
        num_compute_units=UNSET if num_compute_units is None else num_compute_units,
        stream=UNSET if stream is None else stream,
    )
    return _write(request), key


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
    body, key = seal_body(
        node_public_key,
        plaintext,
        model=model,
        stack_small_id=stack_small_id,
        num_compute_units=num_compute_units,
        stream=stream,
        ephemeral=ephemeral,
    )
    return msgspec.json.decode(body, type=ConfidentialComputeRequest), key
