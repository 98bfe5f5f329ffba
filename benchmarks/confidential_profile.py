"""Where a confidential small request's CPU goes in the event loop, against the plain one: the
profile behind benchmarks/profiles/confidential-small.md.

    python -m benchmarks.confidential_profile [--count 1000] [--rounds 7]     the clients below
    python -m benchmarks.confidential_profile --steps [--count 5000]          sealing, step by step

Clients, alternating round by round in ONE warm process against the bench server (as `pair`),
CPU (`process_time`) per request, medians; ratios are the median of per-round ratios:
  bare          the bare loop (`clients/bare.py`)
  bare-sealed   the bare loop plus the protocol's cryptography and nothing else: a fresh key pair,
                salt and nonce, X25519, HKDF-SHA256, AES-256-GCM and BLAKE2b of the request, its
                envelope written by msgspec; the answer's envelope read by msgspec (base64 with it),
                decrypted, its hash compared, decoded. The floor, measured where it runs: in the loop
  atoma         this SDK, plain
  confidential  this SDK, confidential
  replayed      this SDK, confidential, with its first sealed body replayed on every request (the
                bench node accepts it): the request without sealing, all else as usual

`--steps`: `seal_body`'s steps (a copy of it, timed between steps with `perf_counter_ns`) on every
confidential request in the loop, then the same steps in a tight loop: what "cold" costs.
"""

from __future__ import annotations

import argparse
import gc
import hmac
import os
import statistics
import time
from hashlib import blake2b
from typing import Any

import msgspec

from .clients import MESSAGES, atoma, bare
from .server_process import median_ratio, run_against

MODEL = "bench:small"


class _Request(msgspec.Struct, gc=False):
    ciphertext: bytes
    client_dh_public_key: bytes
    node_dh_public_key: bytes
    nonce: bytes
    salt: bytes
    plaintext_body_hash: bytes
    model_name: str
    stack_small_id: int


class _Answer(msgspec.Struct, gc=False):
    ciphertext: bytes
    nonce: bytes
    response_hash: bytes


class _Lock(msgspec.Struct):
    public_key: bytes
    stack_small_id: int


class BareSealed(bare.BareClient):
    """The bare loop with the protocol's cryptography inline (the primitives called the cheapest
    way known: the SDK's own key maker and HKDF), nothing of the SDK around it."""

    async def lock(self, base: str) -> None:
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

        from atoma_core._crypto import _private_key_maker
        from atoma_core._hkdf import hkdf_sha256

        async with self.session.post(
            base + "/v1/nodes/lock", json={"model": MODEL}, headers=self.headers
        ) as r:
            lock = msgspec.json.decode(await r.read(), type=_Lock)
        self.node_raw, self.stack = lock.public_key, lock.stack_small_id
        self.node = X25519PublicKey.from_public_bytes(lock.public_key)
        self.url = base + "/v1/confidential/chat/completions"
        self.make, self.hkdf = _private_key_maker(), hkdf_sha256

    async def complete(self, model: str) -> tuple[int, int]:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        plaintext = bare._encode({"model": model, "messages": MESSAGES})
        fresh = os.urandom(60)
        own = self.make(fresh[:32])
        salt, nonce = fresh[32:48], fresh[48:]
        aead = AESGCM(self.hkdf(salt, own.exchange(self.node)))
        sealed = _Request(
            aead.encrypt(nonce, plaintext, None),
            own.public_key().public_bytes_raw(),
            self.node_raw,
            nonce,
            salt,
            blake2b(plaintext, digest_size=32).digest(),
            model,
            self.stack,
        )
        async with self.session.post(self.url, data=_write(sealed), headers=self.headers) as response:
            response.raise_for_status()
            answer = _read_answer(await response.read())
        opened = aead.decrypt(answer.nonce, answer.ciphertext, None)
        if not hmac.compare_digest(blake2b(opened, digest_size=32).digest(), answer.response_hash):
            raise ValueError("hash")
        completion = bare._completion(opened)
        content = completion.choices[0].message.content
        return len(content or ""), completion.usage.completion_tokens if completion.usage else 0


_write = msgspec.json.Encoder().encode
_read_answer = msgspec.json.Decoder(_Answer).decode


async def _per_request(client: Any, count: int) -> float:
    gc.collect()
    started = time.process_time()
    for _ in range(count):
        await client.complete(MODEL)
    return (time.process_time() - started) / count * 1e6


def _replaying() -> Any:
    """Make `seal_body` hand out its first answer again and again (switched on and off)."""
    import atoma_core._crypto as crypto

    real = crypto.seal_body
    kept: list[Any] = []
    on = [False]

    def seal_body(*args: Any, **kwargs: Any) -> Any:
        if not on[0]:
            return real(*args, **kwargs)
        if not kept:
            kept.append(real(*args, **kwargs))
        return kept[0]

    crypto.seal_body = seal_body
    return on


async def _clients(url: str, count: int, rounds: int) -> None:
    replay = _replaying()  # before the first confidential call imports seal_body
    sealed = BareSealed(url, 100)
    await sealed.lock(url)
    clients: dict[str, Any] = {
        "bare": await bare.connect(url, "bare", 100),
        "bare-sealed": sealed,
        "atoma": await atoma.connect(url, "atoma", 100),
        "confidential": await atoma.connect(url, "atoma-confidential", 100),
    }
    clients["replayed"] = clients["confidential"]
    figures: dict[str, list[float]] = {name: [] for name in clients}
    try:
        for client in clients.values():
            await _per_request(client, 20)
        for _ in range(rounds):
            for name, client in clients.items():
                replay[0] = name == "replayed"
                figures[name].append(await _per_request(client, count))
    finally:
        for name, client in clients.items():
            if name != "replayed":
                await client.aclose()
    print(f"CPU us/request, median of {rounds} rounds of {count} ({MODEL}); ratio: median per round")
    for name, values in figures.items():
        to_bare = median_ratio(values, figures["bare"])
        to_atoma = median_ratio(values, figures["atoma"])
        less = statistics.median(v - p for v, p in zip(values, figures["atoma"], strict=True))
        print(
            f"  {name:13s} {statistics.median(values):7.1f}   /bare {to_bare:.3f}x   /atoma {to_atoma:.3f}x"
            f"   - atoma {less:+7.1f}"
        )


STEPS = ("node key (cached)", "os.urandom(60)", "private key", "exchange", "HKDF", "ResponseKey (AES ctx)",
         "AES-GCM encrypt", "public key bytes", "BLAKE2b", "envelope Struct", "envelope JSON")  # fmt: skip


async def _steps(url: str, count: int) -> None:
    """`seal_body`'s steps in the loop (cold) and back to back (warm), medians in us."""
    import atoma_core._crypto as crypto
    from atoma_core._hkdf import hkdf_sha256

    ns = time.perf_counter_ns
    make = crypto._private_key_maker()
    spent: dict[str, list[int]] = {step: [] for step in STEPS}

    def seal_body(node_public_key: str, plaintext: bytes, **fields: Any) -> Any:  # crypto.seal_body, timed
        t = [ns()]
        node_key, node_raw = crypto._node_key(node_public_key)
        t.append(ns())
        fresh = os.urandom(60)
        t.append(ns())
        own = make(fresh[:32])
        salt, nonce = fresh[32:48], fresh[48:]
        t.append(ns())
        shared = own.exchange(node_key)
        t.append(ns())
        derived = hkdf_sha256(salt, shared)
        t.append(ns())
        key = crypto.ResponseKey(derived)
        t.append(ns())
        ciphertext = key._aead.encrypt(nonce, plaintext, None)
        t.append(ns())
        public = own.public_key().public_bytes_raw()
        t.append(ns())
        digest = crypto.blake2b_256(plaintext)
        t.append(ns())
        request = crypto._SealedRequest(
            ciphertext=ciphertext,
            client_dh_public_key=public,
            node_dh_public_key=node_raw,
            nonce=nonce,
            salt=salt,
            plaintext_body_hash=digest,
            model_name=fields["model"],
            stack_small_id=fields["stack_small_id"],
        )
        t.append(ns())
        body = crypto._write(request)
        t.append(ns())
        for step, start, end in zip(STEPS, t, t[1:], strict=False):
            spent[step].append(end - start)
        return body, key

    crypto.seal_body = seal_body
    client = await atoma.connect(url, "atoma-confidential", 100)
    await _per_request(client, 100)
    for times in spent.values():
        times.clear()
    await _per_request(client, count)
    cold = {step: statistics.median(times) / 1000 for step, times in spent.items()}
    from atoma_funcs._node_lock import _locks

    lock = next(iter(next(iter(_locks.values())).values()))
    plaintext = bare._encode({"model": MODEL, "messages": MESSAGES})
    for times in spent.values():
        times.clear()
    for _ in range(count):
        seal_body(lock.public_key, plaintext, model=MODEL, stack_small_id=lock.stack_small_id)
    warm = {step: statistics.median(times) / 1000 for step, times in spent.items()}
    await client.aclose()
    print(f"seal_body step by step, us (median of {count}): in the loop, and back to back")
    for step in STEPS:
        print(f"  {step:22s} {cold[step]:7.2f} {warm[step]:7.2f}")
    print(f"  {'sum':22s} {sum(cold.values()):7.2f} {sum(warm.values()):7.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="requests per client per round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", action="store_true", help="time sealing's steps instead")
    args = parser.parse_args(argv)
    if args.steps:
        run_against(MODEL, lambda url: _steps(url, args.count))
    else:
        run_against(MODEL, lambda url: _clients(url, args.count, args.rounds))


if __name__ == "__main__":
    main()
