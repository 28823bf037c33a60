"""Redis (factor IV, VI): the shared memory of stateless processes."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from satchel.adapters.resilience import Guard


class Redis:
    """One process's connection pool to ``REDIS_URL``, with a guarded health probe."""

    name = "redis"

    def __init__(self, redis_url: str, *, timeout: float = 2.0) -> None:
        self.client: aioredis.Redis = aioredis.Redis.from_url(
            redis_url, socket_timeout=timeout, socket_connect_timeout=timeout, health_check_interval=30
        )
        self.guard = Guard("redis", timeout=timeout, outage_errors=(OSError, RedisConnectionError, RedisTimeoutError))

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
    """Fixed-window counters in Redis, so a limit holds across every web process."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def hit(self, key: str, *, limit: int, window: int) -> int:
        bucket = f"satchel:rate:{key}:{int(time.time()) // window}"

        async def count() -> int:
            async with self._redis.client.pipeline(transaction=True) as pipe:
                pipe.incr(bucket)
                pipe.expire(bucket, window)
                hits, _ = await pipe.execute()
            return int(hits)

        if await self._redis.guard.call(count) <= limit:
            return 0
        return window - int(time.time()) % window
