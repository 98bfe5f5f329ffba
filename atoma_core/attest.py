"""Node-key verifiers: before confidential compute encrypts a byte to the key `/v1/nodes/lock`
handed out, check that it is the node's own, not one a proxy put in its place.

    core = AtomaCore(node_key_verifier=SuiKeyCommitments(rpc_url=..., atoma_db=..., package=...))

`SuiKeyCommitments` checks the key against the node's latest on-chain commitment at the current
key rotation; `PinnedKeys` against a fixed map; any object with the `verify_node_key` coroutine of
`NodeKeyVerifier` will do. A refusal is `Err(NodeKeyVerificationError)` and nothing is sent.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import zlib
from binascii import Error as BinasciiError
from binascii import a2b_base64
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping, Protocol, Union

import msgspec

from ._single_flight import SingleFlight
from .config import check_server_url, number, shown_url, whole_number
from .errors import InvalidRequestError, MissingDependencyError, NodeKeyVerificationError
from .result import Err, Ok, Result

if TYPE_CHECKING:
    import aiohttp

    from .config import RequestOptions
    from .core import AtomaCore
    from .errors import NodeKeyFailure

__all__ = ["EvidenceCheck", "KeyCommitment", "NodeKeyVerifier", "PinnedKeys", "SuiKeyCommitments"]

MiB = 1024 * 1024
KEY_SIZE = 32
Pair = tuple[int, bytes]


class NodeKeyVerifier(Protocol):
    """What `AtomaCore(node_key_verifier=...)` takes. Called before every confidential attempt
    with the node's id and the raw 32-byte key from the lock; `options` carry the call's
    timeouts, retry rules and what is left of its deadline. Return `Ok(None)` to let the key be
    used, `Err(NodeKeyVerificationError)` to refuse it; an exception also refuses it."""

    async def verify_node_key(
        self, core: AtomaCore, node_small_id: int, public_key: bytes, options: RequestOptions | None = None
    ) -> Result[None, NodeKeyVerificationError]: ...


class KeyCommitment(msgspec.Struct, frozen=True):
    """A node's commitment to its key, as the chain holds it: the fields of its latest
    `NodePublicKeyCommittmentEvent` at the current rotation, and that rotation's `nonce`.

    `device_type`: 300 and up for an NVIDIA GPU. `evidence_bytes`: the zlib-compressed JSON of the
    TEE evidence (`evidence()` opens it). `expected_evidence_nonce()`: the nonce genuine evidence
    must carry, binding this key to this rotation.
    """

    node_small_id: int
    public_key: bytes
    epoch: int
    key_rotation_counter: int
    device_type: int
    evidence_bytes: bytes
    rotation_nonce: int

    def expected_evidence_nonce(self) -> bytes:
        """blake3(rotation nonce as u64 LE || public key || device_type as u16 LE), 32 bytes, as
        atoma-node asks the GPU for it. Needs `blake3` (the `confidential` extra)."""
        try:
            from blake3 import blake3
        except ImportError as exc:
            raise MissingDependencyError(
                'the evidence nonce needs the blake3 package: pip install "atoma-async[confidential]"',
                package="blake3",
                extra="confidential",
            ) from exc
        data = (
            self.rotation_nonce.to_bytes(8, "little")
            + self.public_key
            + self.device_type.to_bytes(2, "little")
        )
        return bytes(blake3(data).digest())

    def evidence(self, limit: int = 16 * MiB) -> Any:
        """The evidence JSON (a list of `{"evidence", "certificate"}` in base64, per device),
        inflated to at most `limit` bytes: ValueError past it or when it is not zlib JSON."""
        inflater = zlib.decompressobj()
        try:
            raw = inflater.decompress(self.evidence_bytes, limit)
        except zlib.error as exc:
            raise ValueError(f"the evidence is not zlib data: {exc}") from None
        if inflater.unconsumed_tail:
            raise ValueError(f"the evidence inflates past {limit} bytes")
        try:
            return msgspec.json.decode(raw)
        except msgspec.DecodeError as exc:
            raise ValueError(f"the evidence is not JSON: {exc}") from None


EvidenceCheck = Callable[[KeyCommitment], Union[bool, Awaitable[bool]]]
"""Your check of a commitment's GPU evidence (NVIDIA's attestation service, or a local verifier):
True to accept; False or an exception refuses the key."""


def _fingerprint(key: bytes) -> str:
    return key[:4].hex() + "..."


def refusal(node: int, reason: NodeKeyFailure, what: str) -> NodeKeyVerificationError:
    """The error refusing `node`'s key: "node N: <what did not match>" (never a secret)."""
    return NodeKeyVerificationError(f"node {node}: {what}", node_small_id=node, reason=reason)


def _refused(node: int, reason: NodeKeyFailure, what: str) -> Err[NodeKeyVerificationError]:
    return Err(refusal(node, reason, what))


def _is_object_id(value: object) -> bool:
    digits = value[2:] if isinstance(value, str) and value.startswith("0x") else ""
    return 0 < len(digits) <= 64 and all(c in "0123456789abcdefABCDEF" for c in digits)


def _raw_key(value: object, name: str) -> bytes:
    """32 raw bytes, from bytes or standard base64 (as the lock answer carries keys)."""
    if isinstance(value, str):
        try:
            value = a2b_base64(value)
        except (BinasciiError, ValueError):
            raise InvalidRequestError(f"{name} is not valid base64") from None
    if not isinstance(value, (bytes, bytearray)) or len(value) != KEY_SIZE:
        raise InvalidRequestError(f"{name} must be {KEY_SIZE} raw bytes or their base64")
    return bytes(value)


class PinnedKeys:
    """Accept only the keys you pinned: `PinnedKeys({node_small_id: key})`, each key 32 raw bytes
    or their base64. A node not in the map is refused ("not_pinned"). For tests, air-gapped
    setups, or a list you verified another way."""

    def __init__(self, keys: Mapping[int, bytes | str]) -> None:
        if not isinstance(keys, Mapping):
            raise InvalidRequestError(
                f"keys must be a mapping of node ids to keys, not {type(keys).__name__}"
            )
        self._keys = {
            whole_number("node id", node, "a whole number >= 0"): _raw_key(key, f"the key of node {node}")
            for node, key in keys.items()
        }

    def __repr__(self) -> str:
        return f"PinnedKeys(nodes={sorted(self._keys)})"

    async def verify_node_key(
        self, core: AtomaCore, node_small_id: int, public_key: bytes, options: RequestOptions | None = None
    ) -> Result[None, NodeKeyVerificationError]:
        """Ok if `public_key` is the key pinned for the node; else "not_pinned" or "mismatch"."""
        pinned = self._keys.get(node_small_id)
        if pinned is None:
            return _refused(node_small_id, "not_pinned", "no key is pinned for this node")
        if pinned != public_key:
            shown = f"({_fingerprint(public_key)}) is not the pinned one ({_fingerprint(pinned)})"
            what = "the key from the lock " + shown
            return _refused(node_small_id, "mismatch", what)
        return Ok(None)


class _VerifiedKeys:
    """Verified (node, key) pairs for `ttl` seconds, at most `max_entries` (the oldest go first),
    and the checks in flight, so concurrent calls for one pair share one check."""

    def __init__(self, ttl: float, max_entries: int) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._until: OrderedDict[Pair, float] = OrderedDict()
        self._in_flight: SingleFlight[Pair, Result[None, NodeKeyVerificationError]] = SingleFlight()

    def fresh(self, pair: Pair) -> bool:
        until = self._until.get(pair)
        if until is None:
            return False
        if until > time.monotonic():
            return True
        del self._until[pair]
        return False

    def remember(self, pair: Pair) -> None:
        self._until[pair] = time.monotonic() + self.ttl
        self._until.move_to_end(pair)
        while len(self._until) > self.max_entries:
            self._until.popitem(last=False)

    async def once(
        self,
        pair: Pair,
        check: Callable[[], Awaitable[Result[None, NodeKeyVerificationError]]],
        wait: float | None,
    ) -> Result[None, NodeKeyVerificationError]:
        """The outcome of the check in flight for `pair`, or of a new one; a waiter gives up
        after `wait` seconds (its own deadline), the check goes on for the others."""
        try:
            return await self._in_flight.run(pair, lambda: self._checked(pair, check), wait)
        except asyncio.TimeoutError:
            return _refused(pair[0], "unavailable", "the key check did not end within the call's deadline")

    async def _checked(
        self, pair: Pair, check: Callable[[], Awaitable[Result[None, NodeKeyVerificationError]]]
    ) -> Result[None, NodeKeyVerificationError]:
        result = await check()
        if result.ok:
            self.remember(pair)
        return result


class SuiKeyCommitments:
    """Check a node's key against its commitment on Sui: the key must equal the `new_public_key`
    of that node's latest `NodePublicKeyCommittmentEvent` at `AtomaDb`'s current
    `key_rotation_counter` (the event, not the `NodeEntry`, which a restart within one rotation
    leaves stale).

    rpc_url: a Sui full node's JSON-RPC URL. atoma_db: the shared `AtomaDb` object's id.
    package: the id of the package that defines `db::NodePublicKeyCommittmentEvent`.
    check_evidence: your check of the commitment's GPU evidence (`KeyCommitment`), if any.
    ttl / max_entries: how long and how many verified (node, key) pairs are remembered, so a
    key costs one check (two RPC round trips or more), not one per call. A key verified before a
    network key rotation stays trusted for the rest of its `ttl`: lower it to notice sooner.
    timeout: seconds one check may take at most, its RPC calls and `check_evidence` together
    (a call whose own deadline is nearer stops waiting for it then).
    page_size / max_pages: events read per `suix_queryEvents` page, and pages at most.
    max_response_size: bytes of one RPC answer at most (`evidence_bytes` make pages large).

    The RPC calls go through the SDK's request path with the calling core's connection pool,
    timeouts and retry rules, but never its token, headers or hooks: those are for Atoma.
    """

    def __init__(
        self,
        *,
        rpc_url: str,
        atoma_db: str,
        package: str,
        check_evidence: EvidenceCheck | None = None,
        ttl: float = 600.0,
        max_entries: int = 1024,
        timeout: float = 10.0,
        page_size: int = 25,
        max_pages: int = 20,
        max_response_size: int = 32 * MiB,
    ) -> None:
        self.rpc_url = check_server_url(rpc_url, "rpc_url")
        for name, value in (("atoma_db", atoma_db), ("package", package)):
            if not _is_object_id(value):
                raise InvalidRequestError(f"{name} must be a Sui object id (0x followed by hex digits)")
        if check_evidence is not None and not callable(check_evidence):
            raise InvalidRequestError("check_evidence must be a function of a KeyCommitment, or None")
        self.atoma_db = atoma_db
        self.package = package
        self.check_evidence = check_evidence
        self.timeout = number("timeout", timeout, "a positive number of seconds", positive=True)
        self.page_size = whole_number("page_size", page_size, "a whole number from 1 to 50", minimum=1)
        if self.page_size > 50:
            raise InvalidRequestError("page_size must be a whole number from 1 to 50 (Sui's page limit)")
        self.max_pages = whole_number("max_pages", max_pages, "a whole number >= 1", minimum=1)
        self.max_response_size = whole_number("max_response_size", max_response_size, "bytes >= 1", minimum=1)
        self._verified = _VerifiedKeys(
            number("ttl", ttl, "a number of seconds >= 0"),
            whole_number("max_entries", max_entries, "a whole number >= 1", minimum=1),
        )
        self._rpc_cores: dict[int, tuple[aiohttp.ClientSession, AtomaCore]] = {}

    def __repr__(self) -> str:
        ids = f"atoma_db={self.atoma_db!r}, package={self.package!r}"
        return f"SuiKeyCommitments(rpc_url='{shown_url(self.rpc_url)}', {ids})"  # no provider key

    async def verify_node_key(
        self, core: AtomaCore, node_small_id: int, public_key: bytes, options: RequestOptions | None = None
    ) -> Result[None, NodeKeyVerificationError]:
        """Ok if the key is the node's committed one (cached), else `Err(NodeKeyVerificationError)`.
        Concurrent calls for one key share one check; it runs within the verifier's `timeout`, not
        within the deadline of the call that started it (`options.timeout_ms`), which bounds only
        that call's wait: a hurried first call must not fail the check for the others."""
        pair = (node_small_id, bytes(public_key))
        if self._verified.fresh(pair):
            return Ok(None)
        wait = shared = None
        if options is not None:
            if options.timeout_ms is not None:
                wait = options.timeout_ms / 1000.0
            shared = msgspec.structs.replace(options, timeout_ms=None)
        return await self._verified.once(pair, lambda: self._check(core, pair, shared), wait)

    async def commitment(
        self, core: AtomaCore, node_small_id: int, options: RequestOptions | None = None
    ) -> Result[KeyCommitment, NodeKeyVerificationError]:
        """The node's latest commitment at the current rotation, read from the chain (no cache)."""
        from ._sui import Budget, latest_commitment, read_rotation

        try:
            budget = Budget(await self._rpc_core(core), node_small_id, options, self.timeout)
            rotation = await read_rotation(budget, self.atoma_db)
            found = await latest_commitment(
                budget, self.package, rotation, page_size=self.page_size, max_pages=self.max_pages
            )
        except NodeKeyVerificationError as refused:
            return Err(refused)
        return Ok(found)

    async def _check(
        self, core: AtomaCore, pair: Pair, options: RequestOptions | None
    ) -> Result[None, NodeKeyVerificationError]:
        node, key = pair
        loop = asyncio.get_running_loop()
        due = loop.time() + self.timeout  # the RPC calls and the evidence check, all of it
        found = await self.commitment(core, node, options)
        if isinstance(found, Err):
            return found
        commitment = found.value
        if commitment.public_key != key:
            what = (
                f"the key from the lock ({_fingerprint(key)}) is not the key it committed on chain at "
                f"rotation {commitment.key_rotation_counter} ({_fingerprint(commitment.public_key)})"
            )
            return _refused(node, "mismatch", what)
        if self.check_evidence is None:
            return Ok(None)
        try:
            return await asyncio.wait_for(
                _evidence_checked(self.check_evidence, commitment), max(0.0, due - loop.time())
            )
        except asyncio.TimeoutError:
            what = f"the evidence check did not end within the verifier's timeout ({self.timeout:g} s)"
            return _refused(node, "unavailable", what)

    async def _rpc_core(self, core: AtomaCore) -> AtomaCore:
        """A core for the RPC URL on the calling core's session: its pool, none of its secrets."""
        from .core import AtomaCore

        session = await core.session()
        known = self._rpc_cores.get(id(session))
        if known is not None and known[0] is session:
            return known[1]
        if len(self._rpc_cores) >= 16:  # sessions come and go with their loops
            self._rpc_cores = {k: v for k, v in self._rpc_cores.items() if not v[0].closed}
        rpc_core = AtomaCore(
            server_url=self.rpc_url,
            session=session,
            timeouts=core.timeouts,
            retry_config=core.retry_config,
            max_body_size=self.max_response_size,
        )
        self._rpc_cores[id(session)] = (session, rpc_core)
        return rpc_core


async def _evidence_checked(
    check: EvidenceCheck, commitment: KeyCommitment
) -> Result[None, NodeKeyVerificationError]:
    node = commitment.node_small_id
    try:
        verdict = check(commitment)
        if inspect.isawaitable(verdict):
            verdict = await verdict
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        refused = _refused(node, "evidence", f"the evidence check failed ({type(exc).__name__})")
        refused.error.__cause__ = exc
        return refused
    if verdict is not True:
        return _refused(node, "evidence", "the evidence check refused the commitment")
    return Ok(None)
