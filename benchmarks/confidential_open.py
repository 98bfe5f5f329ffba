"""Micro-benchmark: CPU per confidential stream event, opened by `ResponseKey.open`.

    python -m benchmarks.confidential_open

One ~200-byte chat chunk sealed by the sandbox's node; best of 15 rounds of process CPU time
(wall time on a shared machine mostly measures the neighbours), printed in µs per event.
"""

from __future__ import annotations

import time
import timeit
from collections.abc import Callable
from typing import Any

import msgspec

from atoma_core._crypto import seal_request
from atoma_core.models import ChatCompletionChunk, ConfidentialComputeResponse
from atoma_core.testing import SandboxNode

CHUNK = {
    "id": "chatcmpl-123456789",
    "object": "chat.completion.chunk",
    "created": 1730000000,
    "model": "meta-llama/Llama-3.3-70B-Instruct",
    "choices": [{"index": 0, "delta": {"content": " hello"}, "logprobs": None, "finish_reason": None}],
}


def best_us(fn: Callable[[], Any], number: int = 100_000) -> float:
    rounds = timeit.repeat(fn, number=number, repeat=15, timer=time.process_time)
    return min(rounds) / number * 1e6


def main() -> None:
    node = SandboxNode()
    request, key = seal_request(node.public_key, b"{}", model="m", stack_small_id=1, stream=True)
    sealed = node.seal(node.open_request(request).key, CHUNK)
    event = msgspec.json.encode(sealed)
    plain = msgspec.json.encode(CHUNK)
    envelope = msgspec.json.Decoder(ConfidentialComputeResponse)
    chunk = msgspec.json.Decoder(ChatCompletionChunk)
    ct, nonce, digest = sealed["ciphertext"], sealed["nonce"], sealed["response_hash"]

    def whole_event() -> ChatCompletionChunk:
        e = envelope.decode(event)
        return chunk.decode(key.open(e.ciphertext, e.nonce, e.response_hash))

    print(f"chunk {len(plain)} bytes, sealed event {len(event)} bytes")
    print(
        f"open (base64, AES-GCM, BLAKE2b check): {best_us(lambda: key.open(ct, nonce, digest)):.2f} µs/event"
    )
    print(f"envelope decode + open + chunk decode:  {best_us(whole_event):.2f} µs/event")
    print(f"plain chunk decode (for comparison):    {best_us(lambda: chunk.decode(plain)):.2f} µs/event")


if __name__ == "__main__":
    main()
