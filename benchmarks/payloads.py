"""What the bench server answers, built and encoded once: chat bodies and SSE streams shaped like
the Atoma proxy's (compact JSON, `response_hash` / `signature` on every object, role chunk first,
finish chunk, then the usage chunk with `choices: []`, and no `data: [DONE]`).

The workload is chosen by the model name, which every SDK sends as is:

    bench:small               a ~20-token completion
    bench:large               a ~4,000-token completion
    bench:stream:N:B:K        a stream of N events, B events per write, `: keep-alive` after every
                              K events (0: none)
    bench:hold:G:N            a stream of N events that stops after 2 until `/bench/release/G`

Only the standard library is used, so the runner can compute what every client must report.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any, NamedTuple

__all__ = ["Expect", "Spec", "expect", "parse_model", "render"]

MODEL_ID = "meta-llama/Llama-3.3-70B-Instruct"
SMALL_TOKENS = 20
LARGE_TOKENS = 4_000
HOLD_AFTER = 2  # events a held stream sends before it waits for its release
HOLD_BATCH = 16  # events per write once released
KEEP_ALIVE = b": keep-alive\n\n"
_SENTENCE = (
    "Atoma runs private and verifiable inference on a decentralised network of GPU nodes, "
    "so every answer carries a hash and a signature that anyone can check against the "
    "node's attested key before trusting the text it came with."
)
_WORDS = _SENTENCE.split()


class Spec(NamedTuple):
    kind: str  # small | large | stream | hold
    events: int = 0  # stream events, role, content, finish and usage chunks included
    per_write: int = 1
    keep_alive: int = 0
    group: str = ""


class Expect(NamedTuple):
    """What decoding one answer must give: chunks (0 for a whole body), content chars, tokens."""

    chunks: int
    chars: int
    tokens: int


def parse_model(model: str) -> Spec:
    parts = model.split(":")
    if len(parts) < 2 or parts[0] != "bench":
        raise ValueError(f"not a bench model: {model!r}")
    kind = parts[1]
    if kind in ("small", "large") and len(parts) == 2:
        return Spec(kind)
    if kind == "stream" and len(parts) == 5:
        events, per_write, keep_alive = (int(p) for p in parts[2:])
        if events < 3 or per_write < 1 or keep_alive < 0:
            raise ValueError(f"bad stream model: {model!r}")
        return Spec(kind, events, per_write, keep_alive)
    if kind == "hold" and len(parts) == 4 and int(parts[3]) > HOLD_AFTER:
        return Spec(kind, int(parts[3]), HOLD_BATCH, 0, parts[2])
    raise ValueError(f"bad bench model: {model!r}")


def _token(i: int) -> str:
    word = _WORDS[i % len(_WORDS)]
    return word if i == 0 else " " + word


def _text(tokens: int) -> str:
    return "".join(_token(i) for i in range(tokens))


def _usage(completion: int) -> dict[str, Any]:
    return {
        "prompt_tokens": 12,
        "completion_tokens": completion,
        "total_tokens": 12 + completion,
        "prompt_tokens_details": {"cached_tokens": 0},
    }


def _signed(obj: dict[str, Any]) -> bytes:
    """Compact JSON with Atoma's extra fields: a base64 hash and a 97-byte base64 signature."""
    digest = hashlib.sha256(json.dumps(obj, separators=(",", ":")).encode()).digest()
    obj["response_hash"] = base64.b64encode(digest).decode()
    obj["signature"] = base64.b64encode(hashlib.sha512(digest).digest() + digest + bytes(1)).decode()
    return json.dumps(obj, separators=(",", ":")).encode()


def _completion(tokens: int) -> bytes:
    return _signed(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 1_732_550_000,
            "model": MODEL_ID,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": _text(tokens), "tool_calls": []},
                    "logprobs": None,
                    "finish_reason": "stop",
                    "stop_reason": None,
                }
            ],
            "usage": _usage(tokens),
        }
    )


def _chunk(delta: dict[str, Any] | None, finish: str | None = None, usage: int | None = None) -> bytes:
    choices = []
    if delta is not None:
        choices.append({"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish})
    obj: dict[str, Any] = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1_732_550_000,
        "model": MODEL_ID,
        "choices": choices,
    }
    if usage is not None:
        obj["usage"] = _usage(usage)
    return b"data: " + _signed(obj) + b"\n\n"


def _events(events: int) -> list[bytes]:
    content = events - 3
    return [
        _chunk({"role": "assistant", "content": ""}),
        *(_chunk({"content": _token(i)}) for i in range(content)),
        _chunk({}, "stop"),
        _chunk(None, usage=content),
    ]


def render(spec: Spec) -> bytes | list[bytes]:
    """A whole JSON body, or a stream's writes in order (a held stream: the first one is sent
    before the hold, the rest after)."""
    if spec.kind == "small":
        return _completion(SMALL_TOKENS)
    if spec.kind == "large":
        return _completion(LARGE_TOKENS)
    events = _events(spec.events)
    if spec.kind == "hold":
        rest = events[HOLD_AFTER:]
        return [b"".join(events[:HOLD_AFTER])] + [
            b"".join(rest[i : i + spec.per_write]) for i in range(0, len(rest), spec.per_write)
        ]
    if spec.keep_alive:
        k = spec.keep_alive
        events = [e + KEEP_ALIVE if (i + 1) % k == 0 else e for i, e in enumerate(events)]
    n = spec.per_write
    return [b"".join(events[i : i + n]) for i in range(0, len(events), n)]


def expect(model: str) -> Expect:
    spec = parse_model(model)
    if spec.kind in ("small", "large"):
        tokens = SMALL_TOKENS if spec.kind == "small" else LARGE_TOKENS
        return Expect(0, len(_text(tokens)), tokens)
    content = spec.events - 3
    return Expect(spec.events, len(_text(content)), content)
