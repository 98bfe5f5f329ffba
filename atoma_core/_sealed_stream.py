"""The decoder of one confidential stream's events: the per-event loop of `ResponseKey.stream_decoder`,
kept apart from the rest of the cryptography (`_crypto`, where the key is made) because it is the
hot loop of every sealed stream and holds the replay table."""

from __future__ import annotations

import hashlib
import hmac
from array import array
from typing import Callable, TypeVar

import msgspec
from cryptography.exceptions import InvalidTag  # a key exists, so the extra is installed
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ._crypto import (
    NONCE_SIZE,
    _bad_envelope,
    _bad_hash,
    _bad_nonce,
    _bad_tag,
    _read_sealed,
    _where,
)
from .errors import ConfidentialComputeError, ResponseValidationError, StreamInterruptedError

__all__ = ["event_decoder"]

T = TypeVar("T")

_FIRST_SLOTS = 16  # a stream's replay table to start with (a power of two: `hash & mask`)
_BLAKE2B_256 = hashlib.blake2b(digest_size=32)  # never updated: copied per stream event


def event_decoder(key: bytes, aead: AESGCM | None, decode: Callable[[bytes], T]) -> Callable[[bytes], T]:
    """`ResponseKey.stream_decoder`: events opened with `key` (its AES-GCM context `aead`, dropped
    by the decoder's `release()` between reads and rebuilt on use), then decoded with `decode`."""
    new_hash = _BLAKE2B_256.copy  # a copy of a made hash: ~0.1 us less than the constructor
    compare_digest = hmac.compare_digest
    # This stream's nonces, as their 64-bit hashes in an open-addressing table (linear
    # probing, at most half full; 0 marks a free slot): 16-32 bytes per event where a set of
    # the nonces would hold ~85 (thousands of streams may be open), and about one probe per
    # event where a sorted array took a bisection (11 steps at 2,000 events: ~0.7 us in the
    # loop). A replayed event has the same nonce, so the same hash; two different nonces share
    # one with odds of 2^-64.
    table = array("q", bytes(8 * _FIRST_SLOTS))
    mask = _FIRST_SLOTS - 1
    room = _FIRST_SLOTS // 2  # events to remember before the table is half full

    def grow() -> None:
        nonlocal table, mask, room
        old = table
        table = array("q", bytes(16 * len(old)))
        mask = len(table) - 1
        room = len(table) // 4  # it holds len(old) // 2 of them, a quarter of the new
        for held in old:
            if held:
                slot = held & mask
                while table[slot]:
                    slot = (slot + 1) & mask
                table[slot] = held

    def none_opened() -> bool:
        """Whether no event of this stream has been opened yet (a failure then is the call's)."""
        return room == _FIRST_SLOTS // 2 and mask == _FIRST_SLOTS - 1

    def decode_event(data: bytes) -> T:
        nonlocal aead, room
        try:
            sealed = _read_sealed(data)
        except msgspec.ValidationError as exc:
            error = _bad_envelope(data, exc)
            if none_opened() or not isinstance(error, ConfidentialComputeError):
                raise error from None
            raise StreamInterruptedError(f"stream event could not be opened: {error}") from None
        nonce = sealed.nonce
        fingerprint = hash(nonce) or 1
        slot = fingerprint & mask
        held = table[slot]
        while held:
            if held == fingerprint:  # the same nonce: the proxy resent an event
                raise StreamInterruptedError("a stream event was replayed (its nonce came before)")
            slot = (slot + 1) & mask
            held = table[slot]
        digest = sealed.response_hash
        try:  # ResponseKey._open, inlined: this runs once per event
            if len(nonce) != NONCE_SIZE:
                raise _bad_nonce()
            if aead is None:
                aead = AESGCM(key)
            try:
                plaintext = aead.decrypt(nonce, sealed.ciphertext, None)
            except InvalidTag:
                raise _bad_tag() from None
            if digest is not None:
                hashed = new_hash()
                hashed.update(plaintext)
                if not compare_digest(hashed.digest(), digest):
                    raise _bad_hash()
        except ConfidentialComputeError as failed:
            if none_opened():
                raise
            raise StreamInterruptedError(f"stream event could not be opened: {failed}") from None
        table[slot] = fingerprint
        room -= 1
        if not room:
            grow()
        try:
            return decode(plaintext)
        except msgspec.DecodeError:
            raise StreamInterruptedError("a decrypted stream event is not JSON") from None
        except msgspec.ValidationError as exc:
            message = f"a decrypted stream event does not match the schema{_where(exc)}"
            raise ResponseValidationError(message, raw=data) from None

    def release() -> None:
        """Let go of the AES-GCM context (~1.3 KB with its key schedule) until the next event:
        the event stream calls it after each read, so thousands of idle streams hold none."""
        nonlocal aead
        aead = None

    decode_event.release = release  # type: ignore[attr-defined]
    return decode_event
