"""What the SDK adds to the wire models: `PlainData`, the base of every model (`to_dict()`,
`to_json()`), and `ResponseMeta`, attached to what it returns (not part of any wire format).

`meta` is not a wire field, so neither `to_dict()` nor `to_json()` includes it. The way back is
msgspec's: `msgspec.convert(d, ChatCompletionResponse)` or
`msgspec.json.decode(s, type=ChatCompletionResponse)`.
"""

from __future__ import annotations

from typing import Any, Mapping

import msgspec

__all__ = ["FallbackFailure", "PlainData", "ResponseMeta"]


class PlainData(msgspec.Struct):
    """A msgspec Struct that turns itself into plain data: dicts, lists, str, int, float, bool, None."""

    def to_dict(self) -> dict[str, Any]:
        """The wire shape as a dict (what `json.dumps` takes): unset request fields left out,
        `meta` left out, tagged messages with their `role`."""
        return msgspec.to_builtins(self, enc_hook=_plain)  # type: ignore[no-any-return]

    def to_json(self, *, indent: int = 0) -> str:
        """The wire shape as JSON text, compact by default or indented by `indent` spaces."""
        encoded = msgspec.json.encode(self, enc_hook=_plain)
        if indent > 0:
            encoded = msgspec.json.format(encoded, indent=indent)
        return encoded.decode()


def _plain(value: object) -> object:
    """What msgspec cannot encode itself: read-only mappings (response headers) become dicts."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, BaseException):  # a fallback's error: its type and message
        return f"{type(value).__name__}: {value}"
    raise NotImplementedError(f"cannot encode {type(value).__name__}")


class FallbackFailure(PlainData):
    """A fallback target that was tried and failed: its model, its server, its error."""

    model: str | None
    server_url: str
    error: Any


class ResponseMeta(PlainData, gc=False):
    """How a response was obtained: HTTP attempts, the server's request id, headers, seconds taken.

    `model` and `server_url` name the target that answered, when the call had fallbacks, a hedge,
    a breaker or a limiter (None otherwise: it is the request's own); `fallbacks` the targets
    tried before it, each with its error; `hedged` whether a hedged copy answered."""

    attempts: int = 1
    request_id: str | None = None
    headers: Mapping[str, str] = {}
    elapsed: float = 0.0
    model: str | None = None
    server_url: str | None = None
    fallbacks: tuple[FallbackFailure, ...] = ()
    hedged: bool = False
