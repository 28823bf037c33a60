"""Redis (factor IV, VI): the shared memory of stateless processes."""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ReadOnlyError, ResponseError, TryAgainError
from redis.exceptions import TimeoutError as RedisTimeoutError

from satchel.adapters.resilience import Guard
from satchel.ports.health import ServiceUnavailable
from satchel.runtime.logging import get_logger

log = get_logger(__name__)

# Replies of a server that cannot serve right now: out of memory, a read-only replica after a failover,
# a failed snapshot that stops writes, a replica without its primary. (Loading is a connection error.)
_UNAVAILABLE = (OutOfMemoryError, ReadOnlyError, TryAgainError)
_UNAVAILABLE_REPLIES = ("MISCONF", "MASTERDOWN", "CLUSTERDOWN")


def is_outage(exc: Exception) -> bool:
    """Does this error mean Redis is failing, rather than that the command was wrong?"""
    if isinstance(exc, _UNAVAILABLE):
        return True
    if isinstance(exc, ResponseError):
        return str(exc).startswith(_UNAVAILABLE_REPLIES)
    return isinstance(exc, (OSError, RedisConnectionError, RedisTimeoutError))


def tls_options(redis_url: str, *, verify: bool) -> dict[str, Any]:
    """How to treat a ``rediss://`` server's certificate: checked, unless the operator said it is self-signed.

    Some hosted Redis offerings give a TLS URL whose certificate no authority signed, and own the
    URL, so the choice cannot ride in its query string; an explicit ``ssl_cert_reqs`` there still wins.
    """
    if not redis_url.startswith("rediss://") or "ssl_cert_reqs=" in redis_url:
        return {}
    return {"ssl_cert_reqs": "required" if verify else "none"}


class Redis:
    """One process's connection pool to ``REDIS_URL``, with a guarded health probe."""

    name = "redis"

    def __init__(self, redis_url: str, *, timeout: float = 2.0, verify_tls: bool = True) -> None:
        self.client: aioredis.Redis = aioredis.Redis.from_url(
            redis_url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=30,
            **tls_options(redis_url, verify=verify_tls),
            # Once, at once, and only when the connection was lost (a restarted server): the command
            # never reached a live server then. The library's default backs off ten times, past any timeout.
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )
        self.guard = Guard("redis", timeout=timeout, is_outage=is_outage)

    async def ping(self) -> None:
        async def ping() -> None:
            await self.client.ping()

        await self.guard.call(ping)

    async def close(self) -> None:
        await self.client.aclose()


class RedisSessionStore:
    """Sessions as JSON under a hash of their id, expiring after ``ttl`` seconds of disuse."""

    name = "sessions"

    def __init__(self, redis: Redis, *, ttl: int = 14 * 24 * 3600) -> None:
        self._redis = redis
        self.ttl = ttl

    @staticmethod
    def _key(session_id: str) -> str:
        # Hashed, so a leaked Redis dump does not hand out live session cookies.
        return "satchel:session:" + hashlib.sha256(session_id.encode()).hexdigest()

    async def ping(self) -> None:
        await self._redis.ping()

    async def load(self, session_id: str) -> dict[str, Any] | None:
        async def get() -> bytes | str | None:
            value: bytes | str | None = await self._redis.client.getex(self._key(session_id), ex=self.ttl)
            return value

        raw = await self._redis.guard.call(get)
        return json.loads(raw) if raw else None

    async def save(self, session_id: str, data: dict[str, Any]) -> None:
        async def set_() -> None:
            await self._redis.client.set(self._key(session_id), json.dumps(data), ex=self.ttl)

        await self._redis.guard.call(set_)

    async def delete(self, session_id: str) -> None:
        async def delete() -> None:
            await self._redis.client.delete(self._key(session_id))

        await self._redis.guard.call(delete)


# A sliding log: the times of the attempts allowed in the last window, in one sorted set per key. Checked and
# added to in one script, on Redis's own clock, so no two web processes (nor their clocks) ever let more
# than ``limit`` through in any window; a fixed window would let twice that through across its edge.
# Milliseconds: a Lua number passed to a command keeps 14 digits.
_SLIDING_LOG = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2]) * 1000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
    redis.call('ZADD', KEYS[1], now, clock[1] .. '.' .. clock[2] .. ':' .. ARGV[3])
    redis.call('PEXPIRE', KEYS[1], window)
    return 0
end
local oldest = tonumber(redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2])
return math.max(1, math.ceil((oldest + window - now) / 1000))
"""


class RedisRateLimiter:
    """At most ``limit`` attempts in any ``window`` seconds per key, kept in Redis so a limit holds across
    every web process. Refused attempts are not counted: whoever waits the time they are told gets in.

    While Redis is down a limiter fails closed (ServiceUnavailable: sign-in and share
    passwords must not become guessable by an outage) unless built with ``fail_open``:
    then every attempt is allowed and a warning logged, for anti-abuse limits on
    signed-in users, whose work should not stop because a counter cannot be kept.
    """

    def __init__(self, redis: Redis, *, fail_open: bool = False) -> None:
        self._redis = redis
        self._fail_open = fail_open
        self._script = redis.client.register_script(_SLIDING_LOG)

    async def hit(self, key: str, *, limit: int, window: int) -> int:
        async def check() -> int:
            return int(await self._script(keys=[f"satchel:rate:{key}"], args=[limit, window, secrets.token_hex(4)]))

        try:
            return await self._redis.guard.call(check)
        except ServiceUnavailable as exc:
            if not self._fail_open:
                raise
            log.warning("rate_limit.not_counted", rate_limit=key.partition(":")[0], reason=exc.reason)
            return 0
