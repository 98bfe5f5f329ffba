"""The sandbox: an aiohttp.web server that behaves like the Atoma proxy, with scripted faults.

Like the proxy (docs section 2): 415 without a JSON content type, 400 `REQUEST_ERROR` for bad
JSON / model / messages and for null or empty message content, 401 `AUTH_ERROR`, the
`{"error": {"code", "message"}}` envelope, `max_completion_tokens: 8192` filled in, extra
`response_hash` / `signature` fields, and streams with `: keep-alive` comments, a usage chunk
always, and no `data: [DONE]`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ._faults import Fault, FaultQueue
from ._routes import ROUTES, Route, Served, check_body
from ._sealed import open_sealed, seal_answer
from ._sui import SuiChain
from ._wire import complete, reset_connection, stream

if TYPE_CHECKING:
    from .._crypto import ResponseKey
    from ._node import SandboxNode

__all__ = ["RecordedRequest", "Sandbox"]

_ENVELOPES = {
    400: ("REQUEST_ERROR", "Request error: bad request"),
    401: ("AUTH_ERROR", "Authentication failed"),
    402: ("BALANCE_ERROR", "Insufficient balance"),
    404: ("NOT_FOUND", "Resource not found"),
    423: ("LOCKED", "Locked"),
    425: ("UNAVAILABLE_STACK", "Stack unavailable"),
    429: ("TOO_MANY_REQUESTS", "Too many requests"),
    500: ("INTERNAL_ERROR", "Internal server error occurred"),
    501: ("NOT_IMPLEMENTED", "Endpoint not implemented"),
    503: ("SERVICE_UNAVAILABLE", "Service unavailable"),
}


class RecordedRequest:
    """A request the sandbox received: headers, raw body and parsed JSON (None if not JSON), and
    `peer`, the client's (host, port): one per connection, so equal peers mean a reused one; and
    `received_at`, when its body had arrived (`time.monotonic()`, the event loop's clock)."""

    def __init__(
        self, path: str, headers: dict[str, str], raw: bytes, method: str = "POST", peer: Any = None
    ) -> None:
        self.received_at = time.monotonic()
        self.method = method
        self.path = path
        self.headers = headers
        self.raw = raw
        self.peer = peer
        try:
            self.json: Any = json.loads(raw) if raw else None
        except ValueError:
            self.json = None


def _error(status: int, message: str | None = None, headers: dict[str, str] | None = None) -> web.Response:
    code, default = _ENVELOPES.get(status, ("INTERNAL_ERROR", "Internal server error occurred"))
    body = {"error": {"code": code, "message": message or default}}
    return web.json_response(body, status=status, headers=headers)


_SEALING_FAULTS = ("tamper", "wrong_hash")


def _default_node() -> SandboxNode | None:
    """A node with a fresh key, or None without the `cryptography` package."""
    from ..errors import MissingDependencyError
    from ._node import SandboxNode

    try:
        return SandboxNode()
    except MissingDependencyError:
        return None


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


class Sandbox:
    """A local Atoma-like server. `async with Sandbox() as sb: AtomaCore(server_url=sb.url)`.

    token: if set, requests must carry `Authorization: Bearer <token>`.
    models: if set, other models get 400 "Model not supported".
    line_ending / bom / send_done: stream framing variants. chunk_delay: seconds between chunks
    (keep-alive comments every `keepalive_interval` meanwhile, as the proxy sends every 15 ms).
    node: the confidential node to play (`/v1/nodes/lock` hands out its key, `/v1/confidential/...`
    opens and seals with it); by default one with a fresh key when `cryptography` is installed.
    `requests` records what arrived and when; `max_concurrent` is the most handled at once.
    `sui` is a Sui full node at `sui_url` whose chain holds the node's key commitment
    (`_sui.SuiChain`); `intercepted` holds what a `faults.substitute_key()` proxy decrypted.
    """

    def __init__(
        self,
        *,
        token: str | None = None,
        models: list[str] | None = None,
        keepalive_interval: float = 0.015,
        chunk_delay: float = 0.0,
        line_ending: str = "\n",
        bom: bool = False,
        send_done: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        node: SandboxNode | None = None,
    ) -> None:
        self.token = token
        self.node = node if node is not None else _default_node()
        self.models = models
        self.keepalive_interval = keepalive_interval
        self.chunk_delay = chunk_delay
        self.line_ending = line_ending.encode()
        self.bom = bom
        self.send_done = send_done
        self.host = host
        self.port = port
        self.requests: list[RecordedRequest] = []
        node_key = None if self.node is None else (self.node.node_small_id, self.node.key)
        self.sui = SuiChain() if node_key is None else SuiChain.history(*node_key)
        self.intercepted: list[bytes] = []
        self._impostor: SandboxNode | None = None
        self.max_concurrent = 0  # the most requests handled at once since start (or reset)
        self._faults = FaultQueue()
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._handlers: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def sui_url(self) -> str:
        """The JSON-RPC URL of the sandbox's Sui full node."""
        return self.url + "/sui"

    def script(self, *faults: Fault) -> Sandbox:
        """Queue faults; each request takes the next one (a fault with times=None stays)."""
        self._faults.extend(faults)
        return self

    def reset(self) -> None:
        """Forget scripted faults, recorded requests (the Sui node's too), what a malicious proxy
        intercepted, and the concurrency peak."""
        self._faults.clear()
        self.requests.clear()
        self.intercepted.clear()
        self.sui.reset()
        self.max_concurrent = len(self._handlers)

    async def start(self) -> Sandbox:
        """Start serving on `host:port` (port 0: a free one, then set in `port` and `url`).

        `async with Sandbox() as sandbox:` calls it."""
        app = web.Application(client_max_size=1024**3)
        for method, path in ROUTES:
            app.router.add_route(method, path, self._handle)
        app.router.add_route("POST", "/sui", self.sui.handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        """Stop serving: requests in progress are cancelled; `async with` calls it on the way out."""
        for task in list(self._handlers):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Sandbox:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.max_concurrent = max(self.max_concurrent, len(self._handlers))
        try:
            return await self._answer(request)
        except ConnectionResetError:  # the client left mid-answer (a break, a timeout): fine
            return web.Response(status=499)
        finally:
            self._handlers.discard(task)

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        peer = request.transport.get_extra_info("peername") if request.transport is not None else None
        self.requests.append(RecordedRequest(request.path, dict(request.headers), raw, request.method, peer))
        fault = self._faults.take(raw)
        if fault is not None:
            early = await self._early_fault(request, fault)
            if early is not None:
                return early
        route = ROUTES[(request.method, request.path)]
        key = None
        node = self.node
        if fault is not None and fault.kind == "substitute_key":
            node = self._substitute(fault)
        if route.sealed is not None:  # a confidential route: open it, then check what is inside
            opened = self._open(request, raw, route, node)
            if isinstance(opened, web.Response):
                return opened
            raw, key = opened
            if node is not self.node:
                self.intercepted.append(raw)  # the man in the middle read it
            route = ROUTES[route.sealed]
        checked = self._validate(request, raw, route)
        if isinstance(checked, web.Response):
            return checked
        rid = f"{next(self._ids):06d}"
        served = Served(
            self.models or ["sandbox-model"],
            None if node is None else node.lock_response,
            fault.message if fault is not None and fault.kind == "reply" else None,
        )
        answer = route.answer(checked, rid, served)
        if key is not None and node is not None:
            answer = seal_answer(node, key, answer, fault)
        if isinstance(answer, list):
            return await stream(self, request, answer, rid, fault)
        if fault is not None and fault.kind == "delay":
            await asyncio.sleep(fault.seconds)
        return await complete(request, answer, rid, fault)

    def _substitute(self, fault: Fault) -> SandboxNode | None:
        """The node a malicious proxy plays: its own key, or the `key` it was told to hand out."""
        from ._node import SandboxNode

        if self.node is None:
            return None
        if self._impostor is None:
            self._impostor = SandboxNode(node_small_id=self.node.node_small_id)
        if fault.body is None and not fault.size:
            return self._impostor
        claimed = SandboxNode(node_small_id=fault.size or self.node.node_small_id)
        if fault.body is not None:
            claimed.public_key = fault.body
        return claimed

    def _open(
        self, request: web.Request, raw: bytes, route: Route, node: SandboxNode | None
    ) -> web.Response | tuple[bytes, ResponseKey]:
        """A sealed request: auth first (as the proxy does here), then the node decrypts it."""
        if self.token is not None and request.headers.get("Authorization") != f"Bearer {self.token}":
            return _error(401)
        if node is None:
            return _error(501, "Confidential compute needs the cryptography package in the sandbox")
        problem = check_body(route, _json_or_none(raw))
        opened = open_sealed(node, raw) if problem is None else problem
        if isinstance(opened, str):
            return _error(400, opened)
        body, key = opened
        return json.dumps(body).encode(), key

    async def _early_fault(self, request: web.Request, fault: Fault) -> web.StreamResponse | None:
        """Faults that act before the request is even looked at."""
        if fault.kind == "hang":
            await asyncio.sleep(3600)
        if fault.kind == "reset" and fault.after_chunks is None:
            reset_connection(request)
            return web.Response()
        if fault.kind == "status":
            if fault.seconds:
                await asyncio.sleep(fault.seconds)
            if fault.body is None:
                return _error(fault.status, headers=dict(fault.headers))
            return web.Response(
                status=fault.status,
                text=fault.body,
                headers=dict(fault.headers),
                content_type=fault.content_type or "text/plain",
            )
        if fault.kind == "non_json":
            return web.Response(
                status=fault.status, text=fault.body or "", content_type=fault.content_type or "text/html"
            )
        return None

    def _validate(self, request: web.Request, raw: bytes, route: Route) -> web.Response | dict[str, Any]:
        """The proxy's checks, in the proxy's order (JSON and fields before auth)."""
        body: dict[str, Any] = {}
        if route.fields:
            try:
                body = json.loads(raw)
            except ValueError as exc:
                return _error(400, f"Request error: Failed to parse body as JSON: {exc}")
            problem = check_body(route, body)
            if problem is not None:
                return _error(400, problem)
        if (
            route.auth
            and self.token is not None
            and request.headers.get("Authorization") != f"Bearer {self.token}"
        ):
            return _error(401)
        if not route.fields:
            return body
        if self.models is not None and "model" in body and body["model"] not in self.models:
            return _error(400, "Request error: Model not supported")
        for message in body.get("messages", ()):
            content = message.get("content") if isinstance(message, dict) else None
            if not (isinstance(content, str) or (isinstance(content, list) and content)):
                return _error(400, "Request error: Missing or invalid message content")
        if request.content_type != "application/json":
            return web.Response(status=415, text="Expected request with `Content-Type: application/json`")
        if "messages" in body and "max_tokens" not in body and "max_completion_tokens" not in body:
            body["max_completion_tokens"] = 8192
        return body
