"""Where a confidential request's CPU goes in the event loop, against the plain one: the profiles
behind benchmarks/profiles/confidential-small.md and confidential-floor-in-loop.md.

    python -m benchmarks.confidential_profile [--model bench:small] [--count N] [--rounds 7]
    python -m benchmarks.confidential_profile --rows [--rounds 7]     every confidential row, a table
    python -m benchmarks.confidential_profile --steps [--count 5000]  sealing, step by step

Clients, alternating round by round in ONE warm process against the bench server (as `pair`),
CPU (`process_time`) per unit (a request, or for a stream model a chunk, as `benchmarks.run`
counts them), medians; ratios are the median of per-round ratios. `--count` is requests or
streams per client per round (default: the full run's count for that model, `plan.FULL`):
  bare          the bare loop (`clients/bare.py`)
  bare-sealed   the bare loop plus the protocol's cryptography and nothing else: a fresh key pair,
                salt and nonce, X25519, HKDF-SHA256, AES-256-GCM and BLAKE2b of the request, its
                envelope written by msgspec; the answer's envelope (a body's, or each SSE event's)
                read by msgspec (base64 with it), decrypted (one AESGCM per request), its hash
                compared in constant time, then decoded as the bare loop decodes the plain one.
                The floor, measured where it runs: in the loop
  atoma         this SDK, plain
  confidential  this SDK, confidential
  replayed      this SDK, confidential, with its first sealed body replayed on every request (the
                bench node accepts it): the request without sealing, all else as usual (not in
                `--rows`)

`--rows`: the six confidential rows of the full run (small, stream one write per chunk, batched +
keep-alive, 4 KiB deltas, 100 KB and 1 MB bodies), one after the other in one process, and a
markdown table: per row each client's CPU per unit, the in-loop floor (bare-sealed / bare), the
SDK's ratio (confidential / atoma), and what the SDK adds over that floor per unit,
(confidential - atoma) - (bare-sealed - bare), each the median over rounds.

`--steps`: `seal_body`'s steps (a copy of it, timed between steps with `perf_counter_ns`) on every
confidential request in the loop, then the same steps in a tight loop: what "cold" costs.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hmac
import os
import statistics
import sys
import time
from hashlib import blake2b
from pathlib import Path
from typing import Any, Awaitable, Callable

import msgspec

from atoma_core._crypto import _SealedRequest  # the sealed request's wire shape

from .clients import MESSAGES, atoma, bare, no_hold
from .plan import FULL, Job, jobs
from .server_process import ServerProcess, median_ratio, pin, run_against

MODEL = "bench:small"
ROWS = {  # table row -> the full run's workload (`plan.jobs(FULL)`)
    "sequential small": "seq",
    "stream, one write per chunk": "stream",
    "stream, batched + keep-alive": "stream-batched",
    "stream, 4 KiB deltas": "delta-4k",
    "100 KB body": "body-100k",
    "1 MB body": "body-1m",
}


class _Answer(msgspec.Struct, gc=False):
    ciphertext: bytes
    nonce: bytes
    response_hash: bytes


class _Lock(msgspec.Struct):
    public_key: bytes
    stack_small_id: int


_write = msgspec.json.Encoder().encode
_read_answer = msgspec.json.Decoder(_Answer).decode
_made = blake2b(digest_size=32)


def _blake2b_256(data: bytes) -> bytes:
    """BLAKE2b-256 from a copy of a made hash: the cheapest way known (as `confidential_floor`)."""
    hashed = _made.copy()
    hashed.update(data)
    return hashed.digest()


class BareSealed(bare.BareClient):
    """The bare loop with the protocol's cryptography inline (the primitives called the cheapest
    way known: the SDK's own key maker and HKDF), nothing of the SDK around it: no replay check,
    no error mapping, no validation beyond the Structs."""

    async def lock(self, base: str, model: str = MODEL) -> None:
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

        from atoma_core._crypto import _private_key_maker
        from atoma_core._hkdf import hkdf_sha256

        async with self.session.post(
            base + "/v1/nodes/lock", json={"model": model}, headers=self.headers
        ) as r:
            lock = msgspec.json.decode(await r.read(), type=_Lock)
        self.node_raw, self.stack = lock.public_key, lock.stack_small_id
        self.node = X25519PublicKey.from_public_bytes(lock.public_key)
        self.url = base + "/v1/confidential/chat/completions"
        self.make, self.hkdf = _private_key_maker(), hkdf_sha256

    def _seal(self, plaintext: bytes, model: str) -> tuple[bytes, Any]:
        """The sealed request's body, and the AESGCM of this request (a fresh key pair, salt, nonce)."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        fresh = os.urandom(60)
        own = self.make(fresh[:32])
        salt, nonce = fresh[32:48], fresh[48:]
        aead = AESGCM(self.hkdf(salt, own.exchange(self.node)))
        sealed = _SealedRequest(
            ciphertext=aead.encrypt(nonce, plaintext, None),
            client_dh_public_key=own.public_key().public_bytes_raw(),
            node_dh_public_key=self.node_raw,
            nonce=nonce,
            salt=salt,
            plaintext_body_hash=_blake2b_256(plaintext),
            model_name=model,
            stack_small_id=self.stack,
        )
        return _write(sealed), aead

    async def complete(self, model: str) -> tuple[int, int]:
        body, aead = self._seal(bare._encode({"model": model, "messages": MESSAGES}), model)
        async with self.session.post(self.url, data=body, headers=self.headers) as response:
            response.raise_for_status()
            answer = _read_answer(await response.read())  # the sealed body let go of once read
        # The ciphertext let go of before the plaintext is decoded, as the bare loop lets go of
        # its body: the decode may reuse that memory, not fresh pages (the SDK does the same).
        nonce, digest, ciphertext = answer.nonce, answer.response_hash, answer.ciphertext
        del answer
        opened = aead.decrypt(nonce, ciphertext, None)
        del ciphertext
        if not hmac.compare_digest(_blake2b_256(opened), digest):
            raise ValueError("hash")
        completion = bare._completion(opened)
        content = completion.choices[0].message.content
        return len(content or ""), completion.usage.completion_tokens if completion.usage else 0

    async def stream(
        self, model: str, hold: Callable[[], Awaitable[None]] = no_hold, hold_at: int = 0
    ) -> tuple[int, int, int]:
        """`BareClient.stream` with each `data:` event's envelope opened before its chunk is decoded."""
        plaintext = bare._encode(
            {"model": model, "messages": MESSAGES, "stream": True, "stream_options": bare._USAGE}
        )
        body, aead = self._seal(plaintext, model)
        decrypt, digest, chunk_of = aead.decrypt, _blake2b_256, bare._chunk
        chunks = chars = tokens = 0
        async with self.session.post(self.url, data=body, headers=self.headers) as response:
            response.raise_for_status()
            buffer = b""
            async for data in response.content.iter_any():
                *events, buffer = (buffer + data).split(b"\n\n")
                del data
                events.reverse()
                while events:
                    event = events.pop()
                    if not event.startswith(b"data: "):
                        continue  # a keep-alive comment
                    answer = _read_answer(event[6:])
                    opened = decrypt(answer.nonce, answer.ciphertext, None)
                    if not hmac.compare_digest(digest(opened), answer.response_hash):
                        raise ValueError("hash")
                    chunk = chunk_of(opened)
                    chunks += 1
                    if chunk.choices:
                        content = chunk.choices[0].delta.content
                        if content:
                            chars += len(content)
                    elif chunk.usage is not None:
                        tokens = chunk.usage.completion_tokens
                    if chunks == hold_at:
                        await hold()
        return chunks, chars, tokens


async def _per_unit(client: Any, job: Job, count: int) -> float:
    """CPU us per request (or per chunk, for a stream job) over `count` requests or streams."""
    gc.collect()
    units = 0
    started = time.process_time()
    if job.kind == "stream":
        for _ in range(count):
            units += (await client.stream(job.model))[0]
    else:
        for _ in range(count):
            await client.complete(job.model)
        units = count
    return (time.process_time() - started) / units * 1e6


def _job(model: str) -> Job:
    """The full run's job asking for `model` (a stream or a request), else a request job."""
    for job in jobs(FULL).values():
        if job.model == model and job.kind in ("seq", "stream"):
            return job
    kind = "stream" if model.startswith(("bench:stream:", "bench:jsonstream:")) else "seq"
    return Job(model, kind, 20 if kind == "stream" else 1000, model)


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


async def _open_clients(url: str, replayed: bool) -> tuple[dict[str, Any], list[bool]]:
    replay = _replaying() if replayed else [False]  # before the first confidential call imports seal_body
    sealed = BareSealed(url, 100)
    await sealed.lock(url)
    clients: dict[str, Any] = {
        "bare": await bare.connect(url, "bare", 100),
        "bare-sealed": sealed,
        "atoma": await atoma.connect(url, "atoma", 100),
        "confidential": await atoma.connect(url, "atoma-confidential", 100),
    }
    if replayed:
        clients["replayed"] = clients["confidential"]
    return clients, replay


async def _close(clients: dict[str, Any]) -> None:
    for name, client in clients.items():
        if name != "replayed":
            await client.aclose()


async def _measure(
    clients: dict[str, Any], replay: list[bool], job: Job, count: int, rounds: int
) -> dict[str, list[float]]:
    """Each client's CPU per unit, round by round, the clients alternating within each round."""
    figures: dict[str, list[float]] = {name: [] for name in clients}
    for client in clients.values():  # warm-up: a tenth of a round, at least one
        await _per_unit(client, job, max(1, count // 10))
    for _ in range(rounds):
        for name, client in clients.items():
            replay[0] = name == "replayed"
            figures[name].append(await _per_unit(client, job, count))
    replay[0] = False
    return figures


async def _clients(url: str, model: str, count: int | None, rounds: int) -> None:
    job = _job(model)
    count = count or job.count
    clients, replay = await _open_clients(url, replayed=True)
    try:
        figures = await _measure(clients, replay, job, count, rounds)
    finally:
        await _close(clients)
    unit = "chunk" if job.kind == "stream" else "request"
    print(f"CPU us/{unit}, median of {rounds} rounds of {count} ({model}); ratio: median per round")
    for name, values in figures.items():
        to_bare = median_ratio(values, figures["bare"])
        to_atoma = median_ratio(values, figures["atoma"])
        less = statistics.median(v - p for v, p in zip(values, figures["atoma"], strict=True))
        print(
            f"  {name:13s} {statistics.median(values):9.2f}   /bare {to_bare:.3f}x   /atoma {to_atoma:.3f}x"
            f"   - atoma {less:+8.2f}"
        )
    print(f"  SDK over the in-loop floor: {_over_floor(figures):+.2f} us/{unit}")


def _over_floor(figures: dict[str, list[float]]) -> float:
    """What the SDK adds over the in-loop floor per unit, median over rounds:
    (confidential - atoma) - (bare-sealed - bare)."""
    rounds = zip(
        figures["bare"], figures["bare-sealed"], figures["atoma"], figures["confidential"], strict=True
    )
    return statistics.median((c - a) - (s - b) for b, s, a, c in rounds)


async def _rows(url: str, rounds: int, scale: float) -> None:
    """Every row of `ROWS`, one after the other in this process, then the table."""
    todo = {row: jobs(FULL)[workload] for row, workload in ROWS.items()}
    clients, replay = await _open_clients(url, replayed=False)
    table = []
    try:
        for row, job in todo.items():
            count = max(1, round(job.count * scale))
            figures = await _measure(clients, replay, job, count, rounds)
            table.append((row, job, count, figures))
            print(f"done: {row}", file=sys.stderr, flush=True)
    finally:
        await _close(clients)
    print(
        f"CPU us per unit (request, or chunk for a stream), median of {rounds} rounds; ratios: median per round"
    )
    print()
    print("| row | unit | bare | bare-sealed | atoma | confidential | floor: sealed/bare | SDK: conf/atoma"
          " | floor over atoma: (atoma+sealed-bare)/atoma | SDK over floor, us/unit |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row, job, count, f in table:
        med = {name: statistics.median(values) for name, values in f.items()}
        floor = median_ratio(f["bare-sealed"], f["bare"])
        sdk = median_ratio(f["confidential"], f["atoma"])
        over_atoma = statistics.median(
            (a + s - b) / a for b, s, a in zip(f["bare"], f["bare-sealed"], f["atoma"], strict=True)
        )
        unit = "chunk" if job.kind == "stream" else "request"
        print(
            f"| {row} | {unit} ({count} x `{job.model}`) | {med['bare']:.2f} | {med['bare-sealed']:.2f}"
            f" | {med['atoma']:.2f} | {med['confidential']:.2f} | {floor:.3f}x | {sdk:.3f}x"
            f" | {over_atoma:.3f}x | {_over_floor(f):+.2f} |"
        )


def _run_rows(rounds: int, scale: float) -> None:
    """`run_against` for every row's model: the server on CPU 1, primed, this process on CPU 0."""
    with ServerProcess(sys.executable, Path(__file__).resolve().parent.parent, 1) as server:
        server.prime([jobs(FULL)[workload].model for workload in ROWS.values()])
        pin(0, 0)
        asyncio.run(_rows(server.url, rounds, scale))


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
    await _per_unit(client, _job(MODEL), 100)
    for times in spent.values():
        times.clear()
    await _per_unit(client, _job(MODEL), count)
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
    parser.add_argument("--model", default=MODEL, help="the bench model every client asks for")
    parser.add_argument("--count", type=int, help="requests or streams per client per round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--rows", action="store_true", help="every confidential row, and a table")
    parser.add_argument("--scale", type=float, default=1.0, help="--rows: the full run's counts times this")
    parser.add_argument("--steps", action="store_true", help="time sealing's steps instead")
    args = parser.parse_args(argv)
    if args.steps:
        run_against(MODEL, lambda url: _steps(url, args.count or 1000))
    elif args.rows:
        _run_rows(args.rounds, args.scale)
    else:
        run_against(args.model, lambda url: _clients(url, args.model, args.count, args.rounds))


if __name__ == "__main__":
    main()
