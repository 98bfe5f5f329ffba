"""What the bench server answers, built and encoded once: chat bodies and SSE streams shaped like
the Atoma proxy's (compact JSON, `response_hash` / `signature` on every object, role chunk first,
finish chunk, then the usage chunk with `choices: []`, and no `data: [DONE]`).

The workload is chosen by the model name, which every SDK sends as is:

    bench:small               a ~20-token completion
    bench:large               a ~4,000-token completion
    bench:body:S              a completion whose JSON body is S bytes (give or take a word)
    bench:stream:N:B:K[:D]    a stream of N events, B events per write, `: keep-alive` after every
                              K events (0: none); each content delta a word, or exactly D chars
    bench:hold:G:N:H          a stream of N events, written 16 at a time, that stops after H
                              events until `/bench/release/G`
    bench:json:S              a completion whose content is a JSON object of ~S chars
                              (`json_document`, for structured outputs)
    bench:jsonstream:S:N:B    that JSON object streamed in N content events, B events per write

Only the standard library is used, so the runner can compute what every client must report.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from typing import Any, NamedTuple

__all__ = ["Expect", "Spec", "expect", "hold_writes", "json_document", "parse_model", "render"]

MODEL_ID = "meta-llama/Llama-3.3-70B-Instruct"
SMALL_TOKENS = 20
LARGE_TOKENS = 4_000
HOLD_BATCH = 16  # events per write in a held stream
KEEP_ALIVE = b": keep-alive\n\n"
_SENTENCE = (
    "Atoma runs private and verifiable inference on a decentralised network of GPU nodes, "
    "so every answer carries a hash and a signature that anyone can check against the "
    "node's attested key before trusting the text it came with."
)
_WORDS = _SENTENCE.split()
_CYCLE = _SENTENCE + " "  # sized deltas are slices of this text repeated


class Spec(NamedTuple):
    kind: str  # small | large | body | stream | hold | json | jsonstream
    events: int = 0  # stream events, role, content, finish and usage chunks included
    per_write: int = 1
    keep_alive: int = 0
    group: str = ""
    delta: int = 0  # chars per content delta (0: one word); for a body, its size in bytes
    hold_after: int = 0  # events a held stream sends before it waits for its release


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
    if kind == "body" and len(parts) == 3 and int(parts[2]) > 0:
        return Spec(kind, delta=int(parts[2]))
    if kind == "stream" and len(parts) in (5, 6):
        events, per_write, keep_alive, delta = (int(p) for p in [*parts[2:], "0"][:4])
        if events < 3 or per_write < 1 or keep_alive < 0 or delta < 0:
            raise ValueError(f"bad stream model: {model!r}")
        return Spec(kind, events, per_write, keep_alive, delta=delta)
    if kind == "json" and len(parts) == 3 and int(parts[2]) > 0:
        return Spec(kind, delta=int(parts[2]))
    if kind == "jsonstream" and len(parts) == 5:
        size, events, per_write = (int(p) for p in parts[2:])
        if size < 2 or not 0 < events <= size or per_write < 1:
            raise ValueError(f"bad jsonstream model: {model!r}")
        return Spec(kind, events + 3, per_write, delta=size)
    if kind == "hold" and len(parts) == 5:
        events, after = int(parts[3]), int(parts[4])
        if not 0 < after < events:
            raise ValueError(f"bad hold model: {model!r}")
        return Spec(kind, events, HOLD_BATCH, 0, parts[2], hold_after=after)
    raise ValueError(f"bad bench model: {model!r}")


def _token(i: int) -> str:
    word = _WORDS[i % len(_WORDS)]
    return word if i == 0 else " " + word


def _text(tokens: int) -> str:
    return "".join(_token(i) for i in range(tokens))


def _piece(i: int, size: int) -> str:
    """The i-th delta of exactly `size` chars: consecutive slices of the sentence, repeated."""
    start = (i * size) % len(_CYCLE)
    return (_CYCLE * (2 + size // len(_CYCLE)))[start : start + size]


def _delta(i: int, size: int) -> str:
    return _piece(i, size) if size else _token(i)


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


@functools.cache
def json_document(size: int) -> str:
    """A JSON object of at least `size` chars: `{"items": [...]}`, records of an int, two strings,
    a list of strings, a float and a bool (what the structured-output benchmarks decode)."""
    items: list[dict[str, Any]] = []
    length = len('{"items": []}')
    while length < size:
        i = len(items)
        items.append(
            {
                "id": i,
                "name": _piece(i, 12),
                "note": _piece(i + 7, 24),
                "tags": [_WORDS[i % len(_WORDS)], _WORDS[(i + 3) % len(_WORDS)]],
                "score": i * 1.25,
                "active": i % 2 == 0,
            }
        )
        length += len(json.dumps(items[-1])) + 2
    return json.dumps({"items": items})


def _completion(tokens: int, content: str | None = None) -> bytes:
    return _signed(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 1_732_550_000,
            "model": MODEL_ID,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": _text(tokens) if content is None else content,
                        "tool_calls": [],
                    },
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


@functools.cache
def _body_tokens(size: int) -> int:
    """How many words make the body of `bench:body:<size>` reach `size` bytes (the content is
    plain ASCII, so each word adds its length to the JSON)."""
    room = size - len(_completion(0))
    tokens = length = 0
    while length < room:
        length += len(_token(tokens))
        tokens += 1
    return tokens


def _events(events: int, delta: int) -> list[bytes]:
    content = events - 3
    return [
        _chunk({"role": "assistant", "content": ""}),
        *(_chunk({"content": _delta(i, delta)}) for i in range(content)),
        _chunk({}, "stop"),
        _chunk(None, usage=content),
    ]


def _json_events(document: str, pieces: int) -> list[bytes]:
    cuts = [len(document) * i // pieces for i in range(pieces + 1)]
    return [
        _chunk({"role": "assistant", "content": ""}),
        *(_chunk({"content": document[cuts[i] : cuts[i + 1]]}) for i in range(pieces)),
        _chunk({}, "stop"),
        _chunk(None, usage=pieces),
    ]


def render(spec: Spec) -> bytes | list[bytes]:
    """A whole JSON body, or a stream's writes in order (a held stream: the first one is sent
    before the hold, the rest after)."""
    if spec.kind == "small":
        return _completion(SMALL_TOKENS)
    if spec.kind == "large":
        return _completion(LARGE_TOKENS)
    if spec.kind == "body":
        return _completion(_body_tokens(spec.delta))
    if spec.kind == "json":
        document = json_document(spec.delta)
        return _completion(len(document) // 4, document)
    if spec.kind == "jsonstream":
        return _writes(_json_events(json_document(spec.delta), spec.events - 3), spec.per_write)
    events = _events(spec.events, spec.delta)
    if spec.kind == "hold":
        after = spec.hold_after
        return _writes(events[:after], spec.per_write) + _writes(events[after:], spec.per_write)
    if spec.keep_alive:
        k = spec.keep_alive
        events = [e + KEEP_ALIVE if (i + 1) % k == 0 else e for i, e in enumerate(events)]
    return _writes(events, spec.per_write)


def _writes(events: list[bytes], per_write: int) -> list[bytes]:
    return [b"".join(events[i : i + per_write]) for i in range(0, len(events), per_write)]


def hold_writes(spec: Spec) -> int:
    """How many of a held stream's writes go out before it waits for its release."""
    return -(-spec.hold_after // spec.per_write)


def expect(model: str) -> Expect:
    spec = parse_model(model)
    if spec.kind in ("json", "jsonstream"):
        chars = len(json_document(spec.delta))
        return Expect(spec.events, chars, spec.events - 3 if spec.events else chars // 4)
    if spec.kind in ("small", "large", "body"):
        tokens = {"small": SMALL_TOKENS, "large": LARGE_TOKENS}.get(spec.kind) or _body_tokens(spec.delta)
        return Expect(0, len(_text(tokens)), tokens)
    content = spec.events - 3
    chars = content * spec.delta if spec.delta else len(_text(content))
    return Expect(spec.events, chars, content)
