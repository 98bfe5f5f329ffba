"""`PlainData`: the base of every model Struct, giving `to_dict()` and `to_json()`.

A response's `meta` (how the SDK obtained it) is not a wire field, so neither includes it. The way
back is msgspec's: `msgspec.convert(d, ChatCompletionResponse)` or
`msgspec.json.decode(s, type=ChatCompletionResponse)`.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["PlainData"]


class PlainData(msgspec.Struct):
    """A msgspec Struct that turns itself into plain data: dicts, lists, str, int, float, bool, None."""

    def to_dict(self) -> dict[str, Any]:
        """The wire shape as a dict (what `json.dumps` takes): unset request fields left out,
        `meta` left out, tagged messages with their `role`."""
        return msgspec.to_builtins(self)  # type: ignore[no-any-return]

    def to_json(self, *, indent: int = 0) -> str:
        """The wire shape as JSON text, compact by default or indented by `indent` spaces."""
        encoded = msgspec.json.encode(self)
        if indent > 0:
            encoded = msgspec.json.format(encoded, indent=indent)
        return encoded.decode()
