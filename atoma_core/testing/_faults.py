"""Scripted misbehaviour for the sandbox: one `Fault` per request, consumed in order.

Build faults with the functions below; `Sandbox.script(...)` queues them. A fault with
`times=None` applies to every request from then on.
"""

from __future__ import annotations

import json
from typing import Any, Literal, Mapping

import msgspec

__all__ = [
    "Fault",
    "delay",
    "done_then_linger",
    "error_event",
    "hang",
    "keepalive_forever",
    "malformed_chunk",
    "non_json",
    "only_for",
    "oversized_event",
    "replay",
    "reply",
    "reset",
    "sealed_text",
    "stall",
    "status",
    "substitute_key",
    "tamper",
    "trickle",
    "truncate",
    "truncated_json",
    "wrong_hash",
]

FaultKind = Literal[
    "status",
    "delay",
    "reset",
    "hang",
    "stall",
    "keepalive_forever",
    "truncate",
    "malformed_chunk",
    "error_event",
    "trickle",
    "non_json",
    "truncated_json",
    "oversized_event",
    "done_then_linger",
    "tamper",
    "wrong_hash",
    "replay",
    "sealed_text",
    "substitute_key",
    "reply",
]


# Faults a confidential route applies while sealing (`_sealed.py`), not by cutting the stream.
SEALING_FAULTS = frozenset({"tamper", "wrong_hash", "replay", "sealed_text"})


class Fault(msgspec.Struct, frozen=True, kw_only=True):
    """What the sandbox does instead of (or on top of) a normal answer."""

    kind: FaultKind
    status: int = 200
    headers: Mapping[str, str] = {}
    body: str | None = None
    content_type: str | None = None
    after_chunks: int | None = None
    seconds: float = 0.0
    size: int = 0
    times: int | None = 1
    message: Mapping[str, Any] | None = None  # a scripted `reply`: content / refusal / tool_calls
    model: str | None = None  # only requests for this model take it (`only_for`)


def only_for(model: str, fault: Fault) -> Fault:
    """`fault`, taken only by requests whose JSON body names `model` (other requests pass it by):
    one model down while another on the same server answers."""
    return msgspec.structs.replace(fault, model=model)


class FaultQueue:
    """The faults scripted for one server, in order: `take()` gives the next request's fault (a
    fault with `times=None` stays), so the sandbox and its Sui node consume faults alike."""

    __slots__ = ("_faults",)

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def extend(self, faults: tuple[Fault, ...]) -> None:
        self._faults.extend(faults)

    def clear(self) -> None:
        self._faults.clear()

    def take(self, raw: bytes = b"") -> Fault | None:
        """The next request's fault, counted down (None: answer normally). `raw` is the request's
        body: a fault made `only_for` another model is passed by."""
        if not self._faults:
            return None
        at, fault = self._next(raw)
        if fault is None:
            return None
        if fault.times is not None:
            if fault.times <= 1:
                self._faults.pop(at)
            else:
                self._faults[at] = msgspec.structs.replace(fault, times=fault.times - 1)
        return fault

    def _next(self, raw: bytes) -> tuple[int, Fault | None]:
        model: Any = None
        for at, fault in enumerate(self._faults):
            if fault.model is None:
                return at, fault
            if model is None:
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                model = body.get("model", "") if isinstance(body, dict) else ""
            if fault.model == model:
                return at, fault
        return 0, None


def status(
    code: int,
    *,
    headers: Mapping[str, str] | None = None,
    body: str | None = None,
    content_type: str | None = None,
    seconds: float = 0.0,
    times: int | None = 1,
) -> Fault:
    """Answer `code` (after `seconds`). Without `body`, the Atoma error envelope for that code is sent."""
    return Fault(
        kind="status",
        status=code,
        headers=headers or {},
        body=body,
        content_type=content_type,
        seconds=seconds,
        times=times,
    )


def delay(seconds: float, *, times: int | None = 1) -> Fault:
    """Wait before answering normally (a stream sends keep-alive comments meanwhile)."""
    return Fault(kind="delay", seconds=seconds, times=times)


def reset(after_chunks: int | None = None, *, times: int | None = 1) -> Fault:
    """Reset the TCP connection: before the headers (None) or after N stream chunks / half the body."""
    return Fault(kind="reset", after_chunks=after_chunks, times=times)


def hang(*, times: int | None = 1) -> Fault:
    """Accept the request and never answer."""
    return Fault(kind="hang", times=times)


def stall(after_chunks: int = 0, *, times: int | None = 1) -> Fault:
    """Send the headers (and N chunks), then nothing at all, the connection left open."""
    return Fault(kind="stall", after_chunks=after_chunks, times=times)


def keepalive_forever(after_chunks: int = 0, *, times: int | None = 1) -> Fault:
    """After N chunks, only `: keep-alive` comments, for ever (a dead generation)."""
    return Fault(kind="keepalive_forever", after_chunks=after_chunks, times=times)


def truncate(after_chunks: int = 1, *, times: int | None = 1) -> Fault:
    """End the body cleanly after N chunks, with no finish_reason (Atoma's failed generation)."""
    return Fault(kind="truncate", after_chunks=after_chunks, times=times)


def malformed_chunk(
    after_chunks: int = 1, *, body: str = '{"id": "x", "choices": [', times: int | None = 1
) -> Fault:
    """After N chunks, a `data:` line that is not valid JSON."""
    return Fault(kind="malformed_chunk", after_chunks=after_chunks, body=body, times=times)


def error_event(
    after_chunks: int = 0,
    *,
    code: str = "TOO_MANY_REQUESTS",
    message: str = "Too many requests",
    as_event: bool = False,
    times: int | None = 1,
) -> Fault:
    """After N chunks, an error inside the stream: `data: {"error": ...}`, or `event: error` if `as_event`."""
    return Fault(
        kind="error_event",
        after_chunks=after_chunks,
        body=message,
        content_type="event" if as_event else None,
        headers={"code": code},
        times=times,
    )


def trickle(seconds_per_byte: float = 0.01, *, limit: int = 200, times: int | None = 1) -> Fault:
    """Send the first `limit` bytes of the answer one at a time, then the rest at once."""
    return Fault(kind="trickle", seconds=seconds_per_byte, size=limit, times=times)


def non_json(
    body: str = "<html><body>Bad gateway</body></html>",
    *,
    status: int = 200,
    content_type: str = "text/html",
    times: int | None = 1,
) -> Fault:
    """Answer with a body that is not JSON."""
    return Fault(kind="non_json", status=status, body=body, content_type=content_type, times=times)


def truncated_json(*, times: int | None = 1) -> Fault:
    """A 200 JSON body cut in half (with a matching Content-Length)."""
    return Fault(kind="truncated_json", times=times)


def oversized_event(size: int, *, times: int | None = 1) -> Fault:
    """A stream event (or a whole body) carrying `size` extra bytes of text."""
    return Fault(kind="oversized_event", size=size, times=times)


def done_then_linger(seconds: float = 30.0, *, times: int | None = 1) -> Fault:
    """Send `data: [DONE]`, then keep the connection open without ending the body."""
    return Fault(kind="done_then_linger", seconds=seconds, times=times)


def tamper(after_chunks: int | None = None, *, times: int | None = 1) -> Fault:
    """Confidential routes: flip a ciphertext bit of the sealed answer (None) or of event N."""
    return Fault(kind="tamper", after_chunks=after_chunks, times=times)


def wrong_hash(after_chunks: int | None = None, *, times: int | None = 1) -> Fault:
    """Confidential routes: a `response_hash` that does not match the answer (None) or event N."""
    return Fault(kind="wrong_hash", after_chunks=after_chunks, times=times)


def replay(after_chunks: int = 1, *, times: int | None = 1) -> Fault:
    """Confidential streams: send sealed event N again right after it (a proxy replaying it)."""
    return Fault(kind="replay", after_chunks=after_chunks, times=times)


def sealed_text(body: str, after_chunks: int | None = None, *, times: int | None = 1) -> Fault:
    """Confidential routes: the node seals `body` (properly, hash and all) instead of the JSON
    answer (None) or of event N: a decrypted answer that is not what the route promises."""
    return Fault(kind="sealed_text", body=body, after_chunks=after_chunks, times=times)


def substitute_key(key: str | None = None, *, node_small_id: int = 0, times: int | None = 1) -> Fault:
    """A malicious proxy: `/v1/nodes/lock` hands out `key` (base64; None: the proxy's own key)
    for the node (`node_small_id`, if not 0, names another); with the proxy's own key, sealed
    requests are opened by the proxy (`Sandbox.intercepted`) and answered, as a man in the middle
    would. `times=None`: from now on."""
    return Fault(kind="substitute_key", body=key, size=node_small_id, times=times)


def reply(
    content: str | None = None,
    *,
    tool_calls: list[Mapping[str, Any]] | None = None,
    refusal: str | None = None,
    finish_reason: str | None = None,
    times: int | None = 1,
) -> Fault:
    """Answer a chat request with this assistant message instead of the computed one (streamed
    too: content in 4-character tokens). `tool_calls`: `{"name", "arguments" (text or a value),
    "id" (optional)}` each. `finish_reason` defaults to "tool_calls" with calls, else "stop"."""
    message = {"content": content, "refusal": refusal, "tool_calls": list(tool_calls or ())}
    if finish_reason is not None:
        message["finish_reason"] = finish_reason
    return Fault(kind="reply", message=message, times=times)
