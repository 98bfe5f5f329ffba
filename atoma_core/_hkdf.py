"""HKDF-SHA256 (RFC 5869) with an empty `info` and a 32-byte key, as confidential compute derives
its AES key: PRK = HMAC(salt, IKM), OKM = HMAC(PRK, 0x01). Byte for byte what `cryptography`'s
HKDF gives (tests/test_crypto.py checks RFC 5869's vectors and random inputs against it).

Why by hand: it runs once per request right after the event loop woke up, caches cold. There
`cryptography`'s HKDF object (a hash object, an ABC check, an OpenSSL MAC fetched each time)
costs ~11 us and `hmac.digest` ~12 us (the system's second copy of OpenSSL, cold too); two
HMACs on CPython's own SHA-256, four hash calls, ~5 us (benchmarks/profiles/confidential-small.md).
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["hkdf_sha256"]


def _builtin_sha256() -> Callable[[bytes], Any]:
    """CPython's own SHA-256 (`_sha256` up to 3.11, `_sha2` since 3.12), else hashlib's."""
    try:
        from _sha256 import sha256  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        try:
            from _sha2 import sha256  # type: ignore[import-not-found,no-redef,unused-ignore]
        except ImportError:
            from hashlib import sha256  # type: ignore[assignment,unused-ignore]
    made: Callable[[bytes], Any] = sha256
    return made


_sha256 = _builtin_sha256()
_BLOCK = 64  # SHA-256's block size: HMAC pads its key to it
# The pads XORed in as one integer each, not through a lookup table indexed by the key's bytes
# (as the stdlib's pure-Python hmac does): the PRK is secret, so no key-dependent memory access.
_IPAD = int.from_bytes(b"\x36" * _BLOCK, "big")
_OPAD = int.from_bytes(b"\x5c" * _BLOCK, "big")
_FIRST_BLOCK = b"\x01"  # T(1) = HMAC(PRK, info || 0x01), info empty; 32 bytes need no T(2)


def _hmac_sha256(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA256 (RFC 2104)."""
    if len(key) > _BLOCK:
        key = _sha256(key).digest()
    padded = int.from_bytes(key.ljust(_BLOCK, b"\0"), "big")
    inner = _sha256((padded ^ _IPAD).to_bytes(_BLOCK, "big") + message).digest()
    digest: bytes = _sha256((padded ^ _OPAD).to_bytes(_BLOCK, "big") + inner).digest()
    return digest


def hkdf_sha256(salt: bytes, ikm: bytes) -> bytes:
    """The 32-byte HKDF-SHA256 key of `ikm` under `salt`, with an empty `info`."""
    return _hmac_sha256(_hmac_sha256(salt, ikm), _FIRST_BLOCK)
