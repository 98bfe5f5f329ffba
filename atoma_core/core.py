"""`AtomaCore`: the configuration plus one `aiohttp.ClientSession` per event loop.

The session is created lazily inside the running loop. When that loop shuts down (the end of
`asyncio.run`), the session is closed by the loop itself, so serverless handlers that call
`asyncio.run` once per invocation neither leak connections nor hit "attached to a different loop".
"""

from __future__ import annotations

import asyncio
import inspect
import os
import weakref
from typing import TYPE_CHECKING, Any, AsyncGenerator, Awaitable, Callable, Mapping, Sequence, Union

from ._resilience import HedgeBudget, Resilience
from ._version import __version__
from .config import (
    Breaker,
    Fallback,
    Hedge,
    Hooks,
    RetryConfig,
    Timeouts,
    as_fallbacks,
    as_retry_config,
    as_timeouts,
    check_headers,
    check_limiter,
    check_server_url,
    normalise_server_url,
    token_problem,
    whole_number,
)
from .config import check_header_value as check_header_value  # re-exported for the request path
from .errors import InvalidRequestError

if TYPE_CHECKING:
    from types import TracebackType

    import aiohttp

    from .attest import NodeKeyVerifier
    from .errors import AtomaError
    from .result import Result

__all__ = ["DEFAULT_SERVER_URL", "AtomaCore", "BearerAuth"]

DEFAULT_SERVER_URL = "https://api.atoma.network"
ATOMA_HOST = "api.atoma.network"
ENV_BEARER_AUTH = "ATOMASDK_BEARER_AUTH"
ENV_SERVER_URL = "ATOMASDK_SERVER_URL"
MiB = 1024 * 1024
_WARM_BODY_LIMIT = 64 * 1024  # warm()'s answer is not used: a larger one closes its connection

BearerAuth = Union[str, Callable[[], str], Callable[[], Awaitable[str]]]


def _bearer_auth(bearer_auth: BearerAuth | None) -> BearerAuth | None:
    """The token (or its callable), from the argument or ATOMASDK_BEARER_AUTH, checked if a str."""
    source = "bearer_auth"
    if bearer_auth is None:
        bearer_auth = os.environ.get(ENV_BEARER_AUTH) or None
        source = ENV_BEARER_AUTH
    if bearer_auth is None or callable(bearer_auth):
        return bearer_auth
    if not isinstance(bearer_auth, str):
        what = "a str, or a function (sync or async) returning one"
        raise InvalidRequestError(f"bearer_auth must be {what}, not {type(bearer_auth).__name__}")
    problem = token_problem(bearer_auth)
    if problem is not None:
        raise InvalidRequestError(f"invalid {source}: the token {problem}")
    return bearer_auth


def _server_url(server_url: str | None) -> str:
    """The base URL, from the argument, ATOMASDK_SERVER_URL (even if empty: an error), or the default."""
    if server_url is not None:
        return check_server_url(server_url, "server_url")
    from_env = os.environ.get(ENV_SERVER_URL)
    if from_env is not None:
        return check_server_url(from_env, ENV_SERVER_URL)
    return DEFAULT_SERVER_URL


def _user_session(session: aiohttp.ClientSession | None) -> aiohttp.ClientSession | None:
    """The caller's own session, if any (aiohttp is already loaded then: checking it is free)."""
    if session is not None:
        import aiohttp

        if not isinstance(session, aiohttp.ClientSession):
            what = "an aiohttp.ClientSession or None"
            raise InvalidRequestError(f"session must be {what}, not {type(session).__name__}")
    return session


def _hooks(hooks: Hooks | Sequence[Hooks] | None) -> tuple[Hooks, ...]:
    """One `Hooks`, several, or none, as the tuple a core keeps."""
    if hooks is None:
        return ()
    if isinstance(hooks, Hooks):
        return (hooks,)
    if isinstance(hooks, (list, tuple)) and all(isinstance(h, Hooks) for h in hooks):
        return tuple(hooks)
    raise InvalidRequestError(f"hooks must be a Hooks, a list of them or None, not {type(hooks).__name__}")


class _LoopSession:
    """A session and the async generator that closes it when its loop shuts down."""

    __slots__ = ("closer", "session")

    def __init__(self, session: aiohttp.ClientSession, closer: AsyncGenerator[None, None]) -> None:
        self.session = session
        self.closer = closer


async def _close_at_loop_shutdown(session: aiohttp.ClientSession) -> AsyncGenerator[None, None]:
    # The loop finalises live async generators in shutdown_asyncgens() (asyncio.run does it
    # before closing), which runs this finally block inside the loop that owns the session.
    try:
        yield
    finally:
        await session.close()


class AtomaCore:
    """Configuration and HTTP session shared by the standalone functions.

    bearer_auth: token, or a (sync or async) callable returning one, re-read for each request;
        defaults to the ATOMASDK_BEARER_AUTH environment variable. Never shown in repr or errors.
        It must be ASCII without control characters.
    server_url: http(s) base URL, optionally with a path prefix; defaults to ATOMASDK_SERVER_URL,
        then https://api.atoma.network. No credentials, query or fragment; an empty one is an error.
        Plain http:// is accepted for any host without a warning (in-cluster servers are often
        http), but the token then crosses the network in clear: use https:// beyond your network.
    timeouts: `Timeouts`, or a number n of seconds: `Timeouts(connect=n, read=n)`, as
        openai-python's `timeout=n` (each connect and read, not the whole call).
    retry_config: `RetryConfig`, or an int n: `RetryConfig(max_retries=n)`.
    session: an `aiohttp.ClientSession` of your own; used as is and never closed by the SDK. The
        SDK's own sessions ignore HTTP(S)_PROXY (aiohttp's trust_env=False): to use a proxy, pass
        `aiohttp.ClientSession(trust_env=True)` here.
    hooks: one `Hooks` or several, run in order; `add_hooks` / `remove_hooks` change them later
        (tracing adds its own next to yours). A call keeps the hooks it started with.
    max_body_size / max_event_size / max_stream_size: bytes of a decoded response body, of one
        stream event, and of all the body one stream may bring in (its events are kept for
        `partial` and `collect()`); past one, `ResponseTooLargeError`. At least 1 each.
    connection_limit: 0 means no limit.
    fallbacks / hedge / limiter: the default of `RequestOptions` fields of the same name for every
        call. breaker: a `Breaker`: keep a circuit breaker per (server, model). `health()` shows
        their state (docs/guides/resilience.md).
    node_key_verifier: checks the node key of every confidential lock before a byte is encrypted to
        it (`atoma_core.attest.SuiKeyCommitments` against the chain, `PinnedKeys`, or your own);
        None: the key from `/v1/nodes/lock` is trusted as it comes (docs/guides/node-key-verification.md).

    Every argument is checked here: a wrong one raises `InvalidRequestError` (a `ValueError`).
    """

    def __init__(
        self,
        bearer_auth: BearerAuth | None = None,
        server_url: str | None = None,
        *,
        timeouts: Timeouts | float | None = None,
        retry_config: RetryConfig | int | None = None,
        headers: Mapping[str, str] | None = None,
        session: aiohttp.ClientSession | None = None,
        hooks: Hooks | Sequence[Hooks] | None = None,
        max_body_size: int = 64 * MiB,
        max_event_size: int = 64 * MiB,
        max_stream_size: int = 64 * MiB,
        connection_limit: int = 100,
        fallbacks: Sequence[str | Fallback] | None = None,
        hedge: Hedge | None = None,
        breaker: Breaker | None = None,
        limiter: Any = None,
        node_key_verifier: NodeKeyVerifier | None = None,
    ) -> None:
        self._bearer_auth = _bearer_auth(bearer_auth)
        self.server_url = _server_url(server_url)
        self.timeouts = as_timeouts(timeouts, "timeouts") if timeouts is not None else Timeouts()
        self.retry_config = (
            as_retry_config(retry_config, "retry_config") if retry_config is not None else RetryConfig()
        )
        self.hooks: tuple[Hooks, ...] = _hooks(hooks)
        size = "a whole number of bytes >= 1"
        self.max_body_size = whole_number("max_body_size", max_body_size, size, minimum=1)
        self.max_event_size = whole_number("max_event_size", max_event_size, size, minimum=1)
        self.max_stream_size = whole_number("max_stream_size", max_stream_size, size, minimum=1)
        self.connection_limit = whole_number(
            "connection_limit", connection_limit, "a whole number >= 0 (0: no limit)"
        )
        self.headers: dict[str, str] = {"User-Agent": f"atoma-python/{__version__}"}
        if headers is not None:
            self.headers.update(check_headers(headers, "headers"))
        self._user_session = _user_session(session)
        verifier = node_key_verifier
        if verifier is not None and not callable(getattr(verifier, "verify_node_key", None)):
            what = "an object with an async verify_node_key method (atoma_core.attest), or None"
            raise InvalidRequestError(f"node_key_verifier must be {what}, not {type(verifier).__name__}")
        self.node_key_verifier = node_key_verifier
        self._sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopSession] = (
            weakref.WeakKeyDictionary()
        )
        self._last_session: (
            tuple[weakref.ReferenceType[asyncio.AbstractEventLoop], aiohttp.ClientSession] | None
        ) = None
        self._urls: dict[str, Any] = {}  # path -> yarl.URL, parsed once
        self._set_resilience(fallbacks, hedge, breaker, limiter)

    def _set_resilience(self, fallbacks: Any, hedge: Any, breaker: Any, limiter: Any) -> None:
        self._fallbacks: tuple[Fallback, ...] = as_fallbacks(fallbacks, "fallbacks") if fallbacks else ()
        if hedge is not None and not isinstance(hedge, Hedge):
            raise InvalidRequestError(f"hedge must be a Hedge or None, not {type(hedge).__name__}")
        if breaker is not None and not isinstance(breaker, Breaker):
            raise InvalidRequestError(f"breaker must be a Breaker or None, not {type(breaker).__name__}")
        self._hedge: Hedge | None = hedge
        self._limiter: Any = check_limiter(limiter, "limiter") if limiter is not None else None
        self.resilience: Resilience | None = None
        self.route_policy: Any = None  # `_route.Policy` of calls without options of their own, made once
        self.option_policies: dict[int, Any] = {}  # id(options) -> (options, `_route.Policy`)
        # Whether every call goes through target choice (fallbacks, breakers, hedge, limiter):
        # False keeps plain calls on the path they took before any of it existed.
        self.routes = bool(self._fallbacks) or hedge is not None or breaker is not None or limiter is not None
        if self.routes:
            self.resilience = Resilience(breaker, lambda: self.hooks)

    # Read-only: a call's route policy is worked out once per core from these (`_route.Policy`),
    # so a later assignment would be ignored; pass them to the constructor or to RequestOptions.
    @property
    def fallbacks(self) -> tuple[Fallback, ...]:
        """The default fallback targets of every call (empty: none)."""
        return self._fallbacks

    @property
    def hedge(self) -> Hedge | None:
        """The default `Hedge` of every call, if any."""
        return self._hedge

    @property
    def limiter(self) -> Any:
        """The default rate limiter of every call, if any."""
        return self._limiter

    def resilience_state(self) -> Resilience:
        """The per-core state of breakers, latencies and the hedge budget (made on first need)."""
        if self.resilience is None:
            self.resilience = Resilience(None, lambda: self.hooks)
        return self.resilience

    def health(self) -> dict[str, Any]:
        """Breakers (state, failure counts, until when open), learned times to first byte per
        (server, model), and the hedge budget's counts, as plain data (dicts, lists, numbers)."""
        if self.resilience is None:
            return {"breakers": [], "latencies": [], "hedge": HedgeBudget().snapshot()}
        return self.resilience.snapshot()

    def __repr__(self) -> str:
        auth = "set" if self._bearer_auth is not None else "none"
        return f"AtomaCore(server_url={self.server_url!r}, bearer_auth=<{auth}>)"

    def add_hooks(self, hooks: Hooks) -> None:
        """Run `hooks` too, after those already installed, from the next call on."""
        self.hooks = (*self.hooks, *_hooks(hooks))

    def remove_hooks(self, hooks: Hooks) -> None:
        """Stop running `hooks` from the next call on (calls in flight keep theirs); absent: no-op."""
        self.hooks = tuple(h for h in self.hooks if h is not hooks)

    async def authorization(self) -> str | None:
        """The Authorization header value for the next request (the token is re-read each time)."""
        token = self._bearer_auth
        if token is None:
            return None
        if not isinstance(token, str):
            value = token()
            if inspect.isawaitable(value):
                value = await value
            if not isinstance(value, str):
                raise InvalidRequestError(f"bearer_auth returned {type(value).__name__}, not a str")
            problem = token_problem(value)
            if problem is not None:
                raise InvalidRequestError(f"the token returned by bearer_auth {problem}")
            token = value
        if token[:7].lower() == "bearer ":
            return token
        return "Bearer " + token

    def url(self, path: str, server_url: str | None = None) -> Any:
        """The absolute URL of an operation path, parsed once per core."""
        if server_url is None:
            url = self._urls.get(path)
            if url is not None:
                return url
        from yarl import URL

        if server_url is not None:
            return URL(normalise_server_url(server_url) + path)
        url = self._urls[path] = URL(self.server_url + path)
        return url

    def session_of(self, loop: asyncio.AbstractEventLoop) -> aiohttp.ClientSession | None:
        """The open session of `loop`, if there is one yet: what every request asks first, so it
        takes no coroutine and no lookup for the loop it was last asked about."""
        if self._user_session is not None:
            return self._user_session
        last = self._last_session
        if last is not None and last[0]() is loop and not last[1].closed:
            return last[1]
        entry = self._sessions.get(loop)
        if entry is None or entry.session.closed:
            return None
        self._last_session = (weakref.ref(loop), entry.session)
        return entry.session

    async def session(self) -> aiohttp.ClientSession:
        """The session for the running loop, created on first use."""
        loop = asyncio.get_running_loop()
        open_session = self.session_of(loop)
        if open_session is not None:
            return open_session
        import aiohttp

        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.connection_limit),
            timeout=aiohttp.ClientTimeout(total=None),
            auto_decompress=True,
        )
        closer = _close_at_loop_shutdown(session)
        await closer.__anext__()
        self._sessions[loop] = _LoopSession(session, closer)
        return session

    def token_required(self, server_url: str | None = None) -> bool:
        """Whether a request to this server needs a bearer token the SDK must have: Atoma's API
        does (sent without one, it could only fail); other servers may need none."""
        from urllib.parse import urlsplit

        return urlsplit(server_url or self.server_url).hostname == ATOMA_HOST

    async def warm(self, timeout: float | None = None) -> Result[None, AtomaError]:
        """Do ahead of the first request what it would do inside the event loop: import the HTTP
        stack, create this loop's session, resolve the server's name and open one pooled
        keep-alive connection, by sending `GET /health` (no token, no body; any HTTP status will
        do). Call it in an init phase, on the loop later requests run on.

        Returns `Ok(None)`, or `Err(APIConnectionError | RequestTimeoutError)` when the server
        cannot be reached within `timeout` seconds (default: the core's connect and read timeouts).
        """
        import aiohttp
        from msgspec.structs import replace

        from ._errormap import transport_error
        from .result import Err, Ok

        timeouts = replace(self.timeouts, total=timeout)
        limits = aiohttp.ClientTimeout(total=timeout, sock_connect=timeouts.connect, sock_read=timeouts.read)
        headers = {**self.headers, "Accept": "application/json"}
        try:
            session = await self.session()
            async with session.get(
                self.url("/health"), headers=headers, timeout=limits, allow_redirects=False
            ) as response:
                size = 0
                while size <= _WARM_BODY_LIMIT:  # read to the end, so the connection is pooled
                    piece = await response.content.readany()
                    if not piece:
                        break
                    size += len(piece)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return Err(transport_error(exc, timeouts))
        return Ok(None)

    async def close(self) -> None:
        """Close the session of the running loop (idempotent). A user-supplied session is left open."""
        loop = asyncio.get_running_loop()
        entry = self._sessions.pop(loop, None)
        self._last_session = None
        if entry is not None:
            await entry.closer.aclose()
        for other_loop in list(self._sessions):
            if other_loop.is_closed():
                self._sessions.pop(other_loop, None)

    async def __aenter__(self) -> AtomaCore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
