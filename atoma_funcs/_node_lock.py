"""The lock step of confidential compute: which node to encrypt to, and whether to trust its key.

A lock (`POST /v1/nodes/lock`) is kept per core, server URL and model and reused while the node
accepts it; a 423 LOCKED / 425 UNAVAILABLE_STACK with it drops it. Concurrent first calls share
one lock request. A new lock is cached only after its key proved usable (an X25519 point that is
not of low order) and, with `AtomaCore(node_key_verifier=...)`, the node's own; a cached lock's key
is checked again on every attempt (the verifier's cache makes that cheap). A refused key is never
cached, so the next call locks anew.
"""

from __future__ import annotations

import asyncio
import weakref
from binascii import a2b_base64
from typing import TYPE_CHECKING

import msgspec

from atoma_core._errormap import timeout_error
from atoma_core._single_flight import SingleFlight
from atoma_core.config import RequestOptions
from atoma_core.errors import AtomaError, LockedError, NodeKeyVerificationError, TooEarlyError
from atoma_core.result import Err, Ok

from ._nodes import nodes_create_lock

if TYPE_CHECKING:
    from atoma_core._operation import CallContext
    from atoma_core.core import AtomaCore
    from atoma_core.models.nodes import NodesCreateLockResponse

__all__ = ["lock_node", "reused_lock"]

Slot = tuple[str, str]  # (server URL, model)

# Locks by core, then by (server URL, model): reused while the node accepts them.
_locks: weakref.WeakKeyDictionary[AtomaCore, dict[Slot, NodesCreateLockResponse]] = (
    weakref.WeakKeyDictionary()
)
# Lock requests in flight, by the same keys: concurrent first calls share one.
_in_flight: weakref.WeakKeyDictionary[AtomaCore, SingleFlight[Slot, NodesCreateLockResponse]] = (
    weakref.WeakKeyDictionary()
)


def _asked_server(ctx: CallContext) -> str:
    """The server the call asked for: its options' `server_url`, else the core's."""
    options = ctx.options
    return ctx.core.server_url if options is None or options.server_url is None else options.server_url


def reused_lock(ctx: CallContext, model: str) -> NodesCreateLockResponse | None:
    """The cached lock when nothing needs deciding: a first attempt, on the call's own server, no
    verifier to ask. Else None, and `lock_node` decides. Synchronous: this is every request's
    path, and an `await` of a coroutine costs ~1-2 us more in the loop."""
    if ctx.last_error is not None or ctx.target is not None or ctx.core.node_key_verifier is not None:
        return None
    cache = _locks.get(ctx.core)
    if cache is None:
        return None
    return cache.get((_asked_server(ctx), model))


async def lock_node(ctx: CallContext, model: str) -> NodesCreateLockResponse:
    """The node lock for this attempt: the cached one (its key checked again: the verifier's cache
    makes that cheap), unless the last attempt was refused with it; else the lock in flight for
    this server and model, or a new one."""
    # A route's target (a fallback server, maybe): lock a node there.
    server = _asked_server(ctx) if ctx.target is None else ctx.target.server_url
    slot = (server, model)
    cache = _locks.setdefault(ctx.core, {})
    sealed_for = getattr(ctx.state, "lock", None)  # the lock the last attempt was sealed for
    refused = isinstance(ctx.last_error, (LockedError, TooEarlyError))
    if refused and sealed_for is not None and cache.get(slot) is sealed_for:
        del cache[slot]  # that node or stack is gone: lock another
    lock = cache.get(slot)
    if lock is None:
        return await _shared_lock(ctx, slot)
    if ctx.core.node_key_verifier is not None:
        try:
            await _check_node_key(ctx, lock, ctx.deadline)
        except NodeKeyVerificationError:  # a deadline or a cancel says nothing against the lock
            _forget(ctx.core, slot, lock)
            raise
    return lock


async def _shared_lock(ctx: CallContext, slot: Slot) -> NodesCreateLockResponse:
    """One lock request in flight per core, server and model: concurrent first calls share it
    (and its key check). A caller that is cancelled, or whose deadline comes first, leaves it
    running for the others."""
    flights = _in_flight.get(ctx.core)
    if flights is None:
        flights = _in_flight[ctx.core] = SingleFlight()
    timeout = None if ctx.deadline is None else ctx.deadline - asyncio.get_running_loop().time()
    try:
        return await flights.run(slot, lambda: _new_lock(ctx, slot), timeout)
    except asyncio.TimeoutError:
        raise timeout_error("total", ctx.timeouts.total) from None


async def _new_lock(ctx: CallContext, slot: Slot) -> NodesCreateLockResponse:
    """Lock a node, check its key, and only then cache the lock (a refused key is never reused).
    Shared by the calls in flight, it runs on the core's bounds, not on the deadline of the call
    that started it: each caller waits within its own (`_shared_lock`), and a hurried first
    caller must not fail the lock for the others."""
    options = ctx.options
    if options is not None and (options.extra_body is not None or options.timeout_ms is not None):
        # extra_body is meant for the sealed body; timeout_ms is the first caller's alone
        options = msgspec.structs.replace(options, extra_body=None, timeout_ms=None)
    if slot[0] != _asked_server(ctx):  # a fallback's server: its lock comes from there
        options = msgspec.structs.replace(options or RequestOptions(), server_url=slot[0])
    result = await nodes_create_lock(ctx.core, {"model": slot[1]}, options)
    if isinstance(result, Err):
        raise result.error
    lock = result.value
    _check_usable(lock)
    if ctx.core.node_key_verifier is not None:
        await _check_node_key(ctx, lock, deadline=None)
    _locks.setdefault(ctx.core, {})[slot] = lock
    return lock


def _check_usable(lock: NodesCreateLockResponse) -> None:
    """Raise `ConfidentialComputeError` ("key" / "encoding") for a key nothing can be sealed to
    (not base64, not 32 bytes, or an X25519 point of low order): one throwaway key agreement."""
    from atoma_core._crypto import SALT_SIZE, derive_key, private_key, unb64

    derive_key(private_key(), unb64(lock.public_key, "node public key"), bytes(SALT_SIZE))


def _forget(core: AtomaCore, slot: Slot, lock: NodesCreateLockResponse) -> None:
    """Drop `lock` from the cache if it is still the one kept there."""
    cache = _locks.get(core)
    if cache is not None and cache.get(slot) is lock:
        del cache[slot]


async def _check_node_key(ctx: CallContext, lock: NodesCreateLockResponse, deadline: float | None) -> None:
    """Ask the core's verifier whether the lock's key is the node's own; raise if not (typed).
    `deadline`: the call's (a cached lock, checked for this call), or None (a new lock, checked
    for every call sharing it). Called on every attempt: no work beyond the verifier's own cache
    lookup when the call has neither options nor a deadline (the verifier then uses the core's
    timeouts and retries)."""
    verifier = ctx.core.node_key_verifier
    assert verifier is not None
    node = lock.node_small_id
    options = None
    if deadline is not None or ctx.options is not None:
        timeout_ms = None
        if deadline is not None:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise timeout_error("total", ctx.timeouts.total)
            timeout_ms = left * 1000.0
        options = RequestOptions(timeouts=ctx.timeouts, retries=ctx.retry, timeout_ms=timeout_ms)
    try:
        key = a2b_base64(lock.public_key)  # valid: _check_usable passed before the lock was kept
        result = await verifier.verify_node_key(ctx.core, node, key, options)
    except (asyncio.CancelledError, AtomaError):
        raise
    except Exception as exc:
        what = f"node {node}: the node-key verifier failed ({type(exc).__name__})"
        raise NodeKeyVerificationError(what, node_small_id=node, reason="unavailable") from exc
    if isinstance(result, Ok):
        return
    if isinstance(result, Err) and isinstance(result.error, NodeKeyVerificationError):
        raise result.error
    what = f"node {node}: the node-key verifier answered {type(result).__name__}, not Ok(None)"
    raise NodeKeyVerificationError(what, node_small_id=node, reason="invalid_answer")
