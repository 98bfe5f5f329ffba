"""The sandbox's confidential routes: open a sealed request with the node's key, answer it as the
plain route would, and seal the answer (or each stream chunk) back; scripted faults spoil one."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import msgspec

from ..errors import ConfidentialComputeError
from ._faults import Fault
from ._node import tamper_ciphertext, wrong_response_hash

if TYPE_CHECKING:
    from .._crypto import ResponseKey
    from ._node import SandboxNode
    from ._routes import Answer

__all__ = ["open_sealed", "seal_answer"]


def open_sealed(node: SandboxNode, raw: bytes) -> tuple[dict[str, Any], ResponseKey] | str:
    """The plain request inside a sealed body and the key to answer with, or why it cannot be opened."""
    try:
        opened = node.open_request(raw)
        body = json.loads(opened.plaintext)
    except (ConfidentialComputeError, msgspec.ValidationError, msgspec.DecodeError, ValueError) as exc:
        return f"Request error: Failed to decrypt the confidential request: {exc}"
    if not isinstance(body, dict):
        return "Request error: the decrypted request is not a JSON object"
    return body, opened.key


def seal_answer(node: SandboxNode, key: ResponseKey, answer: Answer, fault: Fault | None) -> Answer:
    """Seal a JSON answer or each chunk of a stream; a `tamper` / `wrong_hash` fault spoils the
    answer (after_chunks None) or the event at index `after_chunks`, `sealed_text` seals other
    bytes in its place, `replay` sends that event twice."""
    if fault is not None and fault.kind == "sealed_text":
        text = node.seal(key, (fault.body or "").encode())
        if isinstance(answer, dict) or fault.after_chunks is None:
            return text
        return [text if i == fault.after_chunks else node.seal(key, c) for i, c in enumerate(answer)]
    spoil = None
    if fault is not None and fault.kind in ("tamper", "wrong_hash"):
        spoil = tamper_ciphertext if fault.kind == "tamper" else wrong_response_hash
    if isinstance(answer, dict):
        sealed = node.seal(key, answer)
        return (
            spoil(sealed)
            if spoil is not None and fault is not None and fault.after_chunks is None
            else sealed
        )
    events = [node.seal(key, chunk) for chunk in answer]
    if fault is not None and fault.kind == "replay" and fault.after_chunks is not None:
        events.insert(fault.after_chunks + 1, events[fault.after_chunks])
    if spoil is not None and fault is not None and fault.after_chunks is not None:
        events[fault.after_chunks] = spoil(events[fault.after_chunks])
    return events
