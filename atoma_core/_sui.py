"""Reading Atoma's node-key commitments from a Sui full node over JSON-RPC, through the one request
path (`call`): `sui_getObject` for the shared `AtomaDb` (current `key_rotation_counter` and
`nonce`), then `suix_queryEvents`, newest first, for the node's latest
`<package>::db::NodePublicKeyCommittmentEvent` at that counter.

Layouts as Atoma's contracts (`db.move`) and the Sui JSON-RPC render them: u64 values as decimal
strings, u16 as numbers, `vector<u8>` as arrays of numbers, `NodeSmallId` as `{"inner": ...}`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Union

import msgspec

from ._body import json_response
from ._operation import Operation
from ._request import call
from .attest import KeyCommitment, refusal
from .config import RequestOptions
from .errors import ResponseValidationError
from .result import Err

if TYPE_CHECKING:
    from .core import AtomaCore
    from .errors import NodeKeyFailure

__all__ = ["Budget", "Rotation", "latest_commitment", "read_rotation"]

EVENT = "db::NodePublicKeyCommittmentEvent"  # sic: the contract spells it with a double t
U64_MAX = 2**64 - 1

Number = Union[str, int]  # Sui sends u64 as a decimal string; a number is accepted too


class _Request(msgspec.Struct, omit_defaults=True):
    method: str
    params: list[Any]
    id: int = 1
    jsonrpc: str = "2.0"


class _RpcError(msgspec.Struct):
    code: Union[int, str] = 0
    message: str = ""


class _DbFields(msgspec.Struct):
    key_rotation_counter: Number
    nonce: Number


class _Content(msgspec.Struct):
    fields: _DbFields


class _ObjectData(msgspec.Struct):
    content: _Content


class _ObjectResult(msgspec.Struct):
    data: Union[_ObjectData, None] = None
    error: Union[dict[str, Any], None] = None  # e.g. {"code": "notExists", ...}


class _ObjectAnswer(msgspec.Struct):
    result: Union[_ObjectResult, None] = None
    error: Union[_RpcError, None] = None


class _NodeId(msgspec.Struct):
    inner: Number


class _CommitmentJson(msgspec.Struct):
    epoch: Number
    key_rotation_counter: Number
    node_id: _NodeId
    new_public_key: list[int]
    device_type: int
    evidence_bytes: msgspec.Raw  # decoded for the one event that matches, not for every event


class _Event(msgspec.Struct):
    parsedJson: _CommitmentJson


class _EventId(msgspec.Struct):
    txDigest: str
    eventSeq: Number


class _EventsResult(msgspec.Struct):
    data: list[_Event]
    nextCursor: Union[_EventId, None] = None
    hasNextPage: bool = False


class _EventsAnswer(msgspec.Struct):
    result: Union[_EventsResult, None] = None
    error: Union[_RpcError, None] = None


_GET_OBJECT: Operation[_Request, _ObjectAnswer] = Operation(
    "sui_getObject", "POST", "", json_response(_ObjectAnswer), request_type=_Request, auth=False
)
_QUERY_EVENTS: Operation[_Request, _EventsAnswer] = Operation(
    "suix_queryEvents", "POST", "", json_response(_EventsAnswer), request_type=_Request, auth=False
)
_bytes_list = msgspec.json.Decoder(list[int])


class Rotation(msgspec.Struct, frozen=True):
    """The network's current key rotation, as `AtomaDb` holds it."""

    key_rotation_counter: int
    nonce: int


class Budget:
    """The RPC calls of one check: the caller's timeouts and retry rules, one deadline for all."""

    __slots__ = ("core", "deadline", "node", "options")

    def __init__(self, core: AtomaCore, node: int, options: RequestOptions | None, seconds: float) -> None:
        loop_now = asyncio.get_running_loop().time()
        if options is not None and options.timeout_ms is not None:
            seconds = min(seconds, options.timeout_ms / 1000.0)
        self.core = core
        self.node = node
        self.options = options
        self.deadline = loop_now + seconds

    def call_options(self) -> RequestOptions:
        """Options for the next RPC call: the caller's timeouts and retries, what is left of the
        check's deadline (a refusal, "unavailable", once nothing is)."""
        left = self.deadline - asyncio.get_running_loop().time()
        if left <= 0:
            raise refusal(self.node, "unavailable", "the RPC did not answer in time")
        timeouts = retries = None
        if self.options is not None:
            timeouts, retries = self.options.timeouts, self.options.retries
        return RequestOptions(timeouts=timeouts, retries=retries, timeout_ms=left * 1000.0)


async def _rpc(budget: Budget, op: Operation[_Request, Any], request: _Request) -> Any:
    """One JSON-RPC call's `result`; any failure is a `NodeKeyVerificationError` (fail closed)."""
    result = await call(budget.core, op, request, budget.call_options())
    if isinstance(result, Err):
        error = result.error
        reason: NodeKeyFailure = "unavailable"
        if isinstance(error, ResponseValidationError):
            reason = "invalid_answer"
        failure = refusal(budget.node, reason, f"the Sui RPC's {request.method} failed: {error}")
        failure.__cause__ = error
        raise failure
    answer = result.value
    if answer.error is not None:
        code = _shown(answer.error.code)
        raise refusal(budget.node, "unavailable", f"the Sui RPC's {request.method} answered error {code}")
    if answer.result is None:
        raise refusal(budget.node, "invalid_answer", f"the Sui RPC's {request.method} answered no result")
    return answer.result


def _shown(code: Union[int, str]) -> str:
    """An RPC error code for a message: the RPC chose it, so it is cut (an answer may be MBs)."""
    if isinstance(code, int):
        return str(code) if abs(code) < 10**20 else "(a number too long to show)"
    return repr(code[:40]) + ("..." if len(code) > 40 else "")


def _u64(value: Number, field: str) -> int:
    """A u64 as Sui renders it (decimal string); anything else is a malformed answer."""
    if isinstance(value, str):
        if not value.isdigit() or not value.isascii() or len(value) > 20:
            raise ValueError(f"{field} is not a decimal u64")
        value = int(value)
    if not 0 <= value <= U64_MAX:
        raise ValueError(f"{field} is out of the u64 range")
    return value


async def read_rotation(budget: Budget, atoma_db: str) -> Rotation:
    """The current `key_rotation_counter` and `nonce` of the shared `AtomaDb` object."""
    request = _Request("sui_getObject", [atoma_db, {"showContent": True}])
    result: _ObjectResult = await _rpc(budget, _GET_OBJECT, request)
    if result.data is None:
        raise refusal(budget.node, "invalid_answer", "the Sui RPC has no AtomaDb object at that id")
    fields = result.data.content.fields
    try:
        return Rotation(
            _u64(fields.key_rotation_counter, "key_rotation_counter"), _u64(fields.nonce, "nonce")
        )
    except ValueError as exc:
        raise refusal(budget.node, "invalid_answer", f"AtomaDb's {exc}") from None


def _commitment(event: _CommitmentJson, node: int, rotation: Rotation) -> KeyCommitment:
    """The event's fields, checked, with the rotation's nonce (ValueError if malformed)."""
    key = bytes(event.new_public_key)  # ValueError for a number outside 0..255
    if len(key) != 32:
        raise ValueError("new_public_key is not 32 bytes")
    if not 0 <= event.device_type <= 0xFFFF:
        raise ValueError("device_type is not a u16")
    evidence = bytes(_bytes_list.decode(event.evidence_bytes))
    epoch = _u64(event.epoch, "epoch")
    return KeyCommitment(
        node, key, epoch, rotation.key_rotation_counter, event.device_type, evidence, rotation.nonce
    )


async def latest_commitment(
    budget: Budget, package: str, rotation: Rotation, *, page_size: int, max_pages: int
) -> KeyCommitment:
    """The node's newest commitment event at the current rotation counter. Events come newest
    first and counters never go down over time, so the first event at a lower counter ends the
    search: that node committed nothing at this rotation."""
    node, counter = budget.node, rotation.key_rotation_counter
    query = {"MoveEventType": f"{package}::{EVENT}"}
    cursor: _EventId | None = None
    for _ in range(max_pages):
        request = _Request("suix_queryEvents", [query, cursor, page_size, True])
        page: _EventsResult = await _rpc(budget, _QUERY_EVENTS, request)
        for event in page.data:
            fields = event.parsedJson
            try:
                event_counter = _u64(fields.key_rotation_counter, "key_rotation_counter")
                if event_counter > counter:
                    continue  # a rotation after AtomaDb was read: not the one to check against
                if event_counter < counter:
                    break
                if _u64(fields.node_id.inner, "node_id") == node:
                    return _commitment(fields, node, rotation)
            except (ValueError, msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise refusal(node, "invalid_answer", f"a commitment event's {exc}") from None
        else:
            if page.hasNextPage and page.nextCursor is not None:
                cursor = page.nextCursor
                continue
        raise refusal(node, "no_commitment", f"no key commitment by this node at rotation {counter}")
    raise refusal(
        node, "no_commitment", f"no key commitment at rotation {counter} in the newest {max_pages} pages"
    )
