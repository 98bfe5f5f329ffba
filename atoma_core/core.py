"""`AtomaCore`: the configuration plus one `aiohttp.ClientSession` per event loop.

The session is created lazily inside the running loop. When that loop shuts down (the end of
`asyncio.run`), the session is closed by the loop itself, so serverless handlers that call
`asyncio.run` once per invocation neither leak connections nor hit "attached to a different loop".
"""

from __future__ import annotations

import asyncio
import os
import weakref
from typing import TYPE_CHECKING, Any, AsyncGenerator, Awaitable, Callable, Mapping, Sequence, Union

from ._version import __version__
from .config import Hooks, RetryConfig, Timeouts

if TYPE_CHECKING:
    from types import TracebackType

    import aiohttp

__all__ = ["DEFAULT_SERVER_URL", "AtomaCore", "BearerAuth"]

DEFAULT_SERVER_URL = "https://api.atoma.network"
ENV_BEARER_AUTH = "ATOMASDK_BEARER_AUTH"
ENV_SERVER_URL = "ATOMASDK_SERVER_URL"
MiB = 1024 * 1024

BearerAuth = Union[str, Callable[[], str], Callable[[], Awaitable[str]]]


def normalise_server_url(url: str) -> str:
    """Drop a trailing slash and a trailing `/v1` (operation paths start with `/v1`)."""
    url = url.rstrip("/")
    return url[:-3] if url.endswith("/v1") else url


def check_header_value(name: str, value: str) -> None:
    """Refuse CR/LF/NUL in a header (header injection). The value itself is never echoed."""
    if "\r" in value or "\n" in value or "\0" in value:
        raise ValueError(f"header {name!r} contains a CR, LF or NUL character")


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
    server_url: base URL, optionally with a path prefix; default https://api.atoma.network.
    session: an `aiohttp.ClientSession` of your own; used as is and never closed by the SDK.
    hooks: one `Hooks` or several, run in order; `add_hooks` / `remove_hooks` change them later
        (tracing adds its own next to yours). A call keeps the hooks it started with.
    """

    def __init__(
        self,
        bearer_auth: BearerAuth | None = None,
        server_url: str | None = None,
        *,
        timeouts: Timeouts | None = None,
        retry_config: RetryConfig | None = None,
        headers: Mapping[str, str] | None = None,
        session: aiohttp.ClientSession | None = None,
        hooks: Hooks | Sequence[Hooks] | None = None,
        max_body_size: int = 64 * MiB,
        max_event_size: int = 64 * MiB,
        connection_limit: int = 100,
    ) -> None:
        if bearer_auth is None:
            bearer_auth = os.environ.get(ENV_BEARER_AUTH) or None
        if isinstance(bearer_auth, str):
            check_header_value("Authorization", bearer_auth)
        self._bearer_auth = bearer_auth
        self.server_url = normalise_server_url(
            server_url or os.environ.get(ENV_SERVER_URL) or DEFAULT_SERVER_URL
        )
        self.timeouts = timeouts if timeouts is not None else Timeouts()
        self.retry_config = retry_config if retry_config is not None else RetryConfig()
        self.hooks: tuple[Hooks, ...] = (
            () if hooks is None else (hooks,) if isinstance(hooks, Hooks) else tuple(hooks)
        )
        self.max_body_size = max_body_size
        self.max_event_size = max_event_size
        self.connection_limit = connection_limit
        self.headers: dict[str, str] = {"User-Agent": f"atoma-python/{__version__}"}
        for name, value in (headers or {}).items():
            check_header_value(name, value)
            self.headers[name] = value
        self._user_session = session
        self._sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopSession] = (
            weakref.WeakKeyDictionary()
        )
        self._urls: dict[str, Any] = {}  # path -> yarl.URL, parsed once

    def __repr__(self) -> str:
        auth = "set" if self._bearer_auth is not None else "none"
        return f"AtomaCore(server_url={self.server_url!r}, bearer_auth=<{auth}>)"

    def add_hooks(self, hooks: Hooks) -> None:
        """Run `hooks` too, after those already installed, from the next call on."""
        self.hooks = (*self.hooks, hooks)

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
            token = await value if not isinstance(value, str) else value
            check_header_value("Authorization", token)
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

    async def session(self) -> aiohttp.ClientSession:
        """The session for the running loop, created on first use."""
        if self._user_session is not None:
            return self._user_session
        loop = asyncio.get_running_loop()
        entry = self._sessions.get(loop)
        if entry is not None and not entry.session.closed:
            return entry.session
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

    async def close(self) -> None:
        """Close the session of the running loop (idempotent). A user-supplied session is left open."""
        loop = asyncio.get_running_loop()
        entry = self._sessions.pop(loop, None)
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
