"""`RedisLimiter`: one rate limit shared by every process and machine that uses the same Redis
and `key` (extra `redis`: `pip install "atoma-async[redis]"`).

Each acquire is ONE Lua script, run atomically by Redis on Redis's own clock (`TIME`), so
processes on machines with skewed clocks still share one window: a sorted set of the requests
sent in the last `per` seconds, and a pause key that a 429 sets for everyone.

If Redis cannot be reached: `on_unavailable="local"` (the default) warns once and limits this
process alone with a `LocalLimiter` of the same rates, trying Redis again after
`retry_seconds`; `"fail"` makes the call fail with `LimiterUnavailableError`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
import warnings
import weakref
from typing import Any, AsyncGenerator, Literal

from .errors import InvalidRequestError, LimiterUnavailableError, MissingDependencyError
from .limiter import LocalLimiter, check_rates

__all__ = ["RedisLimiter"]

log = logging.getLogger("atoma")

# KEYS: window (zset), pause (string). ARGV: requests (-1: none), tokens (-1: none), per (ms),
# this request's tokens, a unique id. Returns minus the time it was taken at (ms, Redis's clock), or
# the ms to wait before trying again.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
if now < paused then return paused - now end
local per = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - per)
local n = redis.call('ZCARD', KEYS[1])
if n > 0 then
  local oldest = tonumber(redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2])
  local wait = oldest + per - now + 1
  local requests = tonumber(ARGV[1])
  if requests >= 0 and n >= requests then return wait end
  local tokens = tonumber(ARGV[2])
  if tokens >= 0 then
    local used = 0
    for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
      used = used + tonumber(string.match(member, ':(%d+)$'))
    end
    if used + tonumber(ARGV[4]) > tokens then return wait end
  end
end
redis.call('ZADD', KEYS[1], now, ARGV[5] .. ':' .. ARGV[4])
redis.call('PEXPIRE', KEYS[1], per * 2)
return -now
"""

# KEYS: pause. ARGV: pause (ms). Pause everyone until now + pause (never shortening a pause).
_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ms = now + tonumber(ARGV[1])
local paused = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ms > paused then redis.call('SET', KEYS[1], until_ms, 'PX', tonumber(ARGV[1]) + 1000) end
return until_ms
"""


def _redis() -> Any:
    try:
        import redis.asyncio
    except ImportError as exc:
        message = 'RedisLimiter needs the redis package: pip install "atoma-async[redis]"'
        raise MissingDependencyError(message, package="redis", extra="redis") from exc
    return redis.asyncio


class _LoopClient:
    __slots__ = ("acquire", "client", "closer", "pause")

    def __init__(self, client: Any, closer: AsyncGenerator[None, None]) -> None:
        self.client = client
        self.closer = closer
        self.acquire = client.register_script(_ACQUIRE)
        self.pause = client.register_script(_PAUSE)


async def _close_at_loop_shutdown(client: Any) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:  # run by the loop's shutdown_asyncgens(), inside the loop that owns the client
        await client.aclose()


class RedisLimiter:
    """At most `requests` requests and `tokens` tokens (estimated, per acquire) in any `per`
    seconds, for every process that uses this Redis (`url`) and `key`. The URL is never shown."""

    def __init__(
        self,
        url: str,
        requests: float | None = None,
        tokens: float | None = None,
        *,
        per: float = 60.0,
        key: str = "atoma",
        on_unavailable: Literal["local", "fail"] = "local",
        retry_seconds: float = 30.0,
        socket_timeout: float = 2.0,
    ) -> None:
        check_rates(requests, tokens, per)
        if on_unavailable not in ("local", "fail"):
            raise InvalidRequestError(f"on_unavailable must be 'local' or 'fail', not {on_unavailable!r}")
        self._redis = _redis()
        self._url = url
        self.requests = requests
        self.tokens = tokens
        self.per = per
        self.key = key
        self.on_unavailable = on_unavailable
        self.retry_seconds = retry_seconds
        self.socket_timeout = socket_timeout
        self.local = LocalLimiter(requests, tokens, per=per)  # used while Redis is unreachable
        self._down_until = 0.0  # loop-independent: time.monotonic()
        self._warned = False
        self.last_taken: float | None = None  # when the last acquire took its place (Redis's clock, s)
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClient] = (
            weakref.WeakKeyDictionary()
        )
        self._keys = (f"{key}:window", f"{key}:pause")

    def __repr__(self) -> str:
        rates = f"requests={self.requests!r}, tokens={self.tokens!r}, per={self.per!r}"
        return f"RedisLimiter({rates}, key={self.key!r})"

    async def _client(self) -> _LoopClient:
        loop = asyncio.get_running_loop()
        entry = self._clients.get(loop)
        if entry is None:
            client = self._redis.from_url(
                self._url, socket_timeout=self.socket_timeout, socket_connect_timeout=self.socket_timeout
            )
            closer = _close_at_loop_shutdown(client)
            await closer.__anext__()
            entry = self._clients[loop] = _LoopClient(client, closer)
        return entry

    def _unavailable(self, exc: BaseException) -> None:
        """Redis failed: raise for "fail"; else warn (once) and use the local window for a while."""
        import time

        if self.on_unavailable == "fail":
            raise LimiterUnavailableError(
                f"the Redis rate limiter cannot be reached: {type(exc).__name__}"
            ) from None
        self._down_until = time.monotonic() + self.retry_seconds
        if not self._warned:  # the first time a warning; after that, the log says it again
            self._warned = True
            message = "the Redis rate limiter cannot be reached: limiting this process alone meanwhile"
            warnings.warn(message, RuntimeWarning, stacklevel=3)
            return
        log.warning(
            "Redis rate limiter still unreachable (%s): local limits for %g s more",
            type(exc).__name__,
            self.retry_seconds,
        )

    def _down(self) -> bool:
        import time

        return time.monotonic() < self._down_until

    async def acquire(self, tokens: float = 0.0) -> None:
        """Wait until the shared window has room for one request of `tokens`; take it."""
        member = uuid.uuid4().hex
        cost = str(max(0, math.ceil(tokens)))
        args = [
            -1 if self.requests is None else math.floor(self.requests),
            -1 if self.tokens is None else math.floor(self.tokens),
            math.ceil(self.per * 1000),
            cost,
            member,
        ]
        while True:
            if self._down():
                await self.local.acquire(tokens)
                return
            try:
                entry = await self._client()
                answer = int(await entry.acquire(keys=self._keys, args=args))
            except asyncio.CancelledError:
                raise
            except (OSError, self._redis.RedisError) as exc:
                self._unavailable(exc)
                continue
            if answer <= 0:
                self.last_taken = -answer / 1000.0
                return
            await asyncio.sleep(answer / 1000.0)

    async def rate_limited(self, pause: float) -> None:
        """A 429: every process sharing the key waits `pause` seconds from now (Redis's clock)."""
        self.local.pause_now(pause)
        if self._down():
            return
        try:
            entry = await self._client()
            await entry.pause(keys=self._keys[1:], args=[math.ceil(pause * 1000)])
        except asyncio.CancelledError:
            raise
        except (OSError, self._redis.RedisError) as exc:
            self._unavailable(exc)

    async def aclose(self) -> None:
        """Close this loop's connections (idempotent); other loops' close when those loops end."""
        entry = self._clients.pop(asyncio.get_running_loop(), None)
        if entry is not None:
            await entry.closer.aclose()
