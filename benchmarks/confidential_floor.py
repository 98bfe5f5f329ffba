"""The floor under each confidential row: what the protocol's cryptography alone costs per request
or per stream event, on the bench server's own answers, with nothing of the SDK around it.

    python -m benchmarks.confidential_floor

Per request: a fresh X25519 key pair and agreement, HKDF-SHA256, AES-256-GCM and BLAKE2b-256 of
the request, its binary fields written as base64 (the key pair from 32 random bytes and the HKDF
by hand, as the SDK makes them: the cheapest way known to call the same primitives); then the answer's envelope read with its base64
decoded (msgspec, the fastest decoder here), AES-256-GCM and BLAKE2b-256 of the plaintext, the hash
compared. Per event: the envelope read, AES-256-GCM, BLAKE2b-256, the compare. Process CPU time,
best of 9 rounds. A row's floor ratio is (plain + this) / plain, plain from the same run.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
import timeit
from collections.abc import Callable
from typing import Any

import msgspec

from .payloads import parse_model, render

REQUEST = json.dumps(
    {"model": "bench:small", "messages": [{"role": "user", "content": "Say hello in one short sentence."}]}
).encode()
WORKLOADS = {  # row -> (bench model, per what)
    "seq / conc / burst": ("bench:small", "request"),
    "stream (one write per chunk)": ("bench:stream:2000:1:0", "event"),
    "delta-4k": ("bench:stream:1000:1:0:4096", "event"),
    "body-100k": ("bench:body:100000", "request"),
    "body-1m": ("bench:body:1000000", "request"),
}


def best_us(fn: Callable[[], Any], number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=9, timer=time.process_time)) / number * 1e6


def floors() -> dict[str, float]:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from atoma_core._crypto import _private_key_maker, _Sealed, _SealedRequest  # the wire's shapes
    from atoma_core._hkdf import hkdf_sha256

    make = _private_key_maker()

    node = X25519PrivateKey.generate()
    node_public = node.public_key()
    node_raw = node_public.public_bytes_raw()
    read = msgspec.json.Decoder(_Sealed).decode
    write = msgspec.json.Encoder().encode
    key = AESGCM(os.urandom(32))

    made = hashlib.blake2b(digest_size=32)

    def blake(data: bytes) -> bytes:  # a copy of a made hash: ~0.1 us less per event than the constructor
        hashed = made.copy()
        hashed.update(data)
        return hashed.digest()

    def sealed(plaintext: bytes) -> bytes:
        nonce = os.urandom(12)
        return write(
            {"ciphertext": key.encrypt(nonce, plaintext, None), "nonce": nonce, "response_hash": blake(plaintext)}
        )

    def open_one(data: bytes) -> bytes:
        message = read(data)
        plaintext = key.decrypt(message.nonce, message.ciphertext, None)
        assert message.response_hash is not None
        hmac.compare_digest(blake(plaintext), message.response_hash)
        return plaintext

    def seal_request() -> bytes:
        secrets = os.urandom(60)
        own = make(secrets[:32])
        salt, nonce = secrets[32:48], secrets[48:]
        aead = AESGCM(hkdf_sha256(salt, own.exchange(node_public)))
        return write(
            _SealedRequest(
                ciphertext=aead.encrypt(nonce, REQUEST, None),
                client_dh_public_key=own.public_key().public_bytes_raw(),
                node_dh_public_key=node_raw,
                nonce=nonce,
                salt=salt,
                plaintext_body_hash=blake(REQUEST),
                model_name="bench:small",
                stack_small_id=1,
            )
        )

    out = {}
    for row, (model, unit) in WORKLOADS.items():
        answer = render(parse_model(model))
        if unit == "event":
            write_ = answer[len(answer) // 2]
            data = sealed(write_.split(b"\n\n")[0][len(b"data: ") :])
            out[row] = best_us(lambda data=data: open_one(data), 20_000)  # type: ignore[misc]
        else:
            assert isinstance(answer, bytes)
            body = sealed(answer)
            number = 2000 if len(answer) < 10_000 else 50 if len(answer) < 500_000 else 5
            out[row] = best_us(lambda body=body: (seal_request(), open_one(body)), number)  # type: ignore[misc]
    return out


def main() -> None:
    for row, us in floors().items():
        unit = WORKLOADS[row][1]
        print(f"{row:32s} {us:9.2f} us/{unit}")


if __name__ == "__main__":
    main()
