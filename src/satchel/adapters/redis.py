"""Redis (factor IV, VI): the shared memory of stateless processes."""

from __future__ import annotations

import hashlib
import json
import time
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


class RedisRateLimiter:
    """Fixed-window counters in Redis, so a limit holds across every web process.

    While Redis is down a limiter fails closed (ServiceUnavailable: sign-in and share
    passwords must not become guessable by an outage) unless built with ``fail_open``:
    then every attempt is allowed and a warning logged, for anti-abuse limits on
    signed-in users, whose work should not stop because a counter cannot be kept.
    """

    def __init__(self, redis: Redis, *, fail_open: bool = False) -> None:
        self._redis = redis
        self._fail_open = fail_open

    async def hit(self, key: str, *, limit: int, window: int) -> int:
        bucket = f"satchel:rate:{key}:{int(time.time()) // window}"

        async def count() -> int:
            async with self._redis.client.pipeline(transaction=True) as pipe:
                pipe.incr(bucket)
                pipe.expire(bucket, window)
                hits, _ = await pipe.execute()
            return int(hits)

        try:
            hits = await self._redis.guard.call(count)
        except ServiceUnavailable as exc:
            if not self._fail_open:
                raise
            log.warning("rate_limit.not_counted", rate_limit=key.partition(":")[0], reason=exc.reason)
            return 0
        if hits <= limit:
            return 0
        return window - int(time.time()) % window
