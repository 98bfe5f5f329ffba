"""The sandbox's Sui full node: as much JSON-RPC as node-key verification reads, over a scripted
history of Atoma's `db` module (`sui_getObject` of the shared `AtomaDb`, `suix_queryEvents` of
`NodePublicKeyCommittmentEvent` with paging, `suix_getDynamicFieldObject` of a `NodeEntry`).

Rendered as Sui renders Move values: u64 as decimal strings, u16 as numbers, `vector<u8>` as
arrays of numbers, `NodeSmallId` as `{"inner": "<u64>"}`. Its own faults (`script`) act on RPC
requests only: hang, delay, status, non_json, error_event (a JSON-RPC error), oversized_event
(a 200 body of `size` bytes, streamed).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import zlib
from typing import Any

from aiohttp import web

from ._faults import Fault, FaultQueue

__all__ = ["ATOMA_DB", "NVIDIA_GPU", "PACKAGE", "SuiChain"]

PACKAGE = "0x" + "a7" * 32  # the sandbox's Atoma package id
ATOMA_DB = "0x" + "db" * 32  # the sandbox's shared AtomaDb object id
NVIDIA_GPU = 300  # device_type of an NVIDIA GPU in Atoma's contracts


def fake_key(label: str) -> bytes:
    """32 deterministic bytes standing for some X25519 public key."""
    return hashlib.sha256(label.encode()).digest()


def evidence_for(nonce: int, key: bytes, device_type: int) -> bytes:
    """Stand-in GPU evidence as atoma-node commits it (zlib-compressed JSON, one entry per
    device), carrying the evidence nonce in hex when `blake3` is installed."""
    try:
        from blake3 import blake3

        data = nonce.to_bytes(8, "little") + key + device_type.to_bytes(2, "little")
        tag = blake3(data).hexdigest()
    except ImportError:
        tag = "no-blake3"
    return zlib.compress(json.dumps([{"evidence": tag, "certificate": "sandbox"}]).encode())


class SuiChain:
    """A Sui full node's view of Atoma's `db` module: `AtomaDb`'s rotation, the commitment
    events (oldest first), and each node's `NodeEntry` (which, as on chain, keeps the first key
    committed within a rotation for a device type). `requests` records the JSON-RPC bodies."""

    def __init__(self, *, package: str = PACKAGE, atoma_db: str = ATOMA_DB) -> None:
        self.package = package
        self.atoma_db = atoma_db
        self.key_rotation_counter = 0
        self.nonce = 0
        self.epoch = 700
        self.events: list[dict[str, Any]] = []
        self.entries: dict[int, dict[str, Any]] = {}
        self.requests: list[Any] = []
        self.headers: list[dict[str, str]] = []  # each request's headers, in the same order
        self._faults = FaultQueue()

    @classmethod
    def history(cls, node_small_id: int, public_key: bytes) -> SuiChain:
        """Three rotations: the node's old keys at rotations 1 and 2, a key committed first at
        rotation 3 and kept by its `NodeEntry` (`stale_key`), then `public_key` after a restart
        within rotation 3 (the entry is not updated), with other nodes' events around and after
        it, enough for several pages."""
        chain = cls()
        node, other = node_small_id, node_small_id + 1
        chain.rotate(0x1111_2222_3333_4444)
        chain.commit(node, fake_key("old-1"))
        chain.commit(other, fake_key("other-1"))
        chain.rotate(0x5555_6666_7777_8888)
        chain.commit(other, fake_key("other-2"))
        chain.commit(node, fake_key("old-2"))
        chain.rotate(0x9999_AAAA_BBBB_CCCC)
        chain.commit(node, fake_key("stale"))
        chain.commit(other, fake_key("other-3"))
        chain.commit(node, public_key)
        for i in range(30):
            chain.commit(node + 2 + i, fake_key(f"filler-{i}"))
        return chain

    @property
    def stale_key(self) -> bytes:
        """The key `history`'s node committed first at rotation 3: its `NodeEntry` still holds it."""
        return fake_key("stale")

    @property
    def old_keys(self) -> list[bytes]:
        """The keys `history`'s node committed at rotations 1 and 2."""
        return [fake_key("old-1"), fake_key("old-2")]

    def other_key(self, node_small_id: int) -> bytes:
        """The key `node_small_id` committed last (another node's, in tests)."""
        for event in reversed(self.events):
            if event["node_id"]["inner"] == str(node_small_id):
                return bytes(event["new_public_key"])
        raise KeyError(node_small_id)

    def rotate(self, nonce: int) -> None:
        """A network key rotation (`NewKeyRotationEvent`): the counter goes up, a new nonce."""
        self.key_rotation_counter += 1
        self.nonce = nonce
        self.epoch += 1

    def commit(self, node_small_id: int, public_key: bytes, device_type: int = NVIDIA_GPU) -> None:
        """`db::rotate_node_public_key`: an event always; the entry only as the contract does."""
        self.events.append(
            {
                "epoch": str(self.epoch),
                "key_rotation_counter": str(self.key_rotation_counter),
                "node_id": {"inner": str(node_small_id)},
                "new_public_key": list(public_key),
                "device_type": device_type,
                "evidence_bytes": list(evidence_for(self.nonce, public_key, device_type)),
            }
        )
        entry = self.entries.get(node_small_id)
        counter = str(self.key_rotation_counter)
        if entry is None or entry["confidential_compute_last_rotation_counter"] != counter:
            self.entries[node_small_id] = {
                "confidential_compute_last_rotation_counter": counter,
                "confidential_compute_last_updated_epoch": str(self.epoch),
                "confidential_compute_public_key_commitment": list(public_key),
                "confidential_compute_device_types": [device_type],
            }
        elif device_type not in entry["confidential_compute_device_types"]:
            entry["confidential_compute_device_types"].append(device_type)
        else:  # the same device again within one rotation: only the epoch moves (a restart)
            entry["confidential_compute_last_updated_epoch"] = str(self.epoch)

    def script(self, *faults: Fault) -> SuiChain:
        """Queue faults for the next RPC requests (a fault with times=None stays)."""
        self._faults.extend(faults)
        return self

    def reset(self) -> None:
        """Forget scripted faults and recorded requests."""
        self._faults.clear()
        self.requests.clear()
        self.headers.clear()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = None
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        fault = self._faults.take()
        if fault is not None:
            early = await self._fault(request, fault)
            if early is not None:
                return early
        if not isinstance(body, dict) or not isinstance(body.get("params"), list):
            return _rpc_error(None, -32600, "Invalid Request")
        method, params, rid = body.get("method"), body["params"], body.get("id")
        if method == "sui_getObject":
            result = self._object(params)
        elif method == "suix_queryEvents":
            result = self._query_events(params)
        elif method == "suix_getDynamicFieldObject":
            result = self._entry(params)
        else:
            return _rpc_error(rid, -32601, f"Method not found: {method}")
        if result is None:
            return _rpc_error(rid, -32602, "Invalid params")
        return web.json_response({"jsonrpc": "2.0", "id": rid, "result": result})

    async def _fault(self, request: web.Request, fault: Fault) -> web.StreamResponse | None:
        if fault.kind == "hang":
            await asyncio.sleep(3600)
        if fault.kind == "delay":
            await asyncio.sleep(fault.seconds)
            return None
        if fault.kind == "status":
            return web.json_response({"error": "sandbox fault"}, status=fault.status)
        if fault.kind == "non_json":
            return web.Response(status=fault.status, text=fault.body or "", content_type=fault.content_type)
        if fault.kind == "error_event":
            return _rpc_error(1, -32000, fault.body or "sandbox fault")
        if fault.kind == "oversized_event":
            resp = web.StreamResponse(headers={"Content-Type": "application/json"})
            await resp.prepare(request)
            await resp.write(b'{"jsonrpc":"2.0","id":1,"result":{"data":[')
            piece = b"1," * 32768
            sent = 0
            while sent < fault.size:  # the client stops reading at its limit and leaves
                await resp.write(piece)
                sent += len(piece)
            return resp
        return None

    def _object(self, params: list[Any]) -> dict[str, Any] | None:
        if not params or params[0] != self.atoma_db:
            return {"error": {"code": "notExists", "object_id": params[0] if params else None}}
        fields = {
            "id": {"id": self.atoma_db},
            "key_rotation_counter": str(self.key_rotation_counter),
            "nonce": str(self.nonce),
            "next_node_small_id": {"inner": str(len(self.entries) + 1)},
            "nodes": {"type": "0x2::table::Table", "fields": {"id": {"id": "0x" + "0e" * 32}}},
            "is_registration_disabled": False,
        }
        kind = f"{self.package}::db::AtomaDb"
        content = {"dataType": "moveObject", "type": kind, "hasPublicTransfer": False, "fields": fields}
        return {"data": {"objectId": self.atoma_db, "version": "42", "type": kind, "content": content}}

    def _query_events(self, params: list[Any]) -> dict[str, Any] | None:
        query = params[0] if params else None
        cursor = params[1] if len(params) > 1 else None
        limit = params[2] if len(params) > 2 and isinstance(params[2], int) else 50
        descending = bool(params[3]) if len(params) > 3 else False
        wanted = f"{self.package}::db::NodePublicKeyCommittmentEvent"
        if not isinstance(query, dict) or query.get("MoveEventType") != wanted:
            return {"data": [], "nextCursor": None, "hasNextPage": False}
        order = list(range(len(self.events)))
        if descending:
            order.reverse()
        start = 0
        if isinstance(cursor, dict):
            seq = int(str(cursor.get("txDigest", "tx-0")).removeprefix("tx-"))
            start = order.index(seq) + 1 if seq in order else len(order)
        page = order[start : start + max(1, min(limit, 50))]
        data = [self._event(i) for i in page]
        more = start + len(page) < len(order)
        next_cursor = {"txDigest": f"tx-{page[-1]}", "eventSeq": "0"} if page else cursor
        return {"data": data, "nextCursor": next_cursor, "hasNextPage": more}

    def _event(self, index: int) -> dict[str, Any]:
        return {
            "id": {"txDigest": f"tx-{index}", "eventSeq": "0"},
            "packageId": self.package,
            "transactionModule": "db",
            "sender": "0x" + "5e" * 32,
            "type": f"{self.package}::db::NodePublicKeyCommittmentEvent",
            "parsedJson": self.events[index],
            "timestampMs": str(1_700_000_000_000 + index),
        }

    def _entry(self, params: list[Any]) -> dict[str, Any] | None:
        name = params[1] if len(params) > 1 and isinstance(params[1], dict) else {}
        value = name.get("value")
        node = value.get("inner") if isinstance(value, dict) else value
        entry = self.entries.get(int(str(node))) if str(node).isdigit() else None
        if entry is None:
            return {"error": {"code": "dynamicFieldNotFound"}}
        fields = {"name": {"inner": str(node)}, "value": {"fields": entry}}
        return {"data": {"content": {"dataType": "moveObject", "fields": fields}}}


def _rpc_error(rid: Any, code: int, message: str) -> web.Response:
    return web.json_response({"jsonrpc": "2.0", "id": rid, "error": {"code": code, "message": message}})
