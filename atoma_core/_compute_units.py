"""`num_compute_units` for a confidential request: what the proxy should reserve, sent in clear.

The proxy cannot read a sealed body, so this field is its only estimate. What it does with it
(atoma-proxy middleware): for images it locks `num_compute_units` pixels, 1024 x 1024 when absent;
for chat and embeddings it ignores the field and locks its fixed confidential token budget.

Decision, per kind:
- chat: the request's own limit, `max_completion_tokens` or else `max_tokens` (what the Python
  SDK sends: `max_tokens`), omitted when neither is set (as the TS SDK always omits it). Ignored
  by today's proxy, but an honest upper bound if it ever starts to read it.
- images: `n * width * height` from `size` ("1024x1024"), the formula the proxy applies to plain
  image requests; omitted when `size` is absent or unreadable, so the proxy's default applies.
  (The Python SDK looks for `width`/`height` fields that its image request does not have, so it
  never sends one; reserving 1024 x 1024 for a larger or multi-image request would under-book.)
- completions (legacy): as chat, `max_tokens` when set (the TS SDK, which has the operation,
  leaves the field to its caller).
- embeddings: omitted, as both SDKs do.
"""

from __future__ import annotations

from typing import Any, Literal, Mapping

__all__ = ["ConfidentialKind", "num_compute_units"]

ConfidentialKind = Literal["chat", "completions", "embeddings", "images"]


def num_compute_units(kind: ConfidentialKind, request: Mapping[str, Any]) -> int | None:
    """The units to announce for `request` (its plain JSON object), or None to omit the field."""
    if kind == "chat" or kind == "completions":
        return _positive(request.get("max_completion_tokens")) or _positive(request.get("max_tokens"))
    if kind == "images":
        return _pixels(request.get("size"), request.get("n"))
    return None


def _pixels(size: Any, n: Any) -> int | None:
    """n * width * height for a "WIDTHxHEIGHT" size; None when the size is missing or malformed."""
    if not isinstance(size, str):
        return None
    width, sep, height = size.partition("x")
    if not (sep and width.isdecimal() and height.isdecimal()):
        return None
    return (_positive(n) or 1) * int(width) * int(height)


def _positive(value: Any) -> int | None:
    """`value` when it is a positive int (bools are not counts), else None."""
    return value if type(value) is int and value > 0 else None
