"""Redis (factor IV, VI): the shared memory of stateless processes."""

from __future__ import annotations

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
        self._guard = Guard("redis", timeout=timeout, outage_errors=(OSError, RedisConnectionError, RedisTimeoutError))

    async def ping(self) -> None:
        async def ping() -> None:
            await self.client.ping()

        await self._guard.call(ping)

    async def close(self) -> None:
        await self.client.aclose()
