"""Metadata the SDK attaches to what it returns (not part of any wire format)."""

from __future__ import annotations

from typing import Mapping

from ._data import PlainData

__all__ = ["ResponseMeta"]


class ResponseMeta(PlainData, gc=False):
    """How a response was obtained: HTTP attempts, the server's request id, headers, seconds taken."""

    attempts: int = 1
    request_id: str | None = None
    headers: Mapping[str, str] = {}
    elapsed: float = 0.0
