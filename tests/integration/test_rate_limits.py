"""Rate limits, on the suite's real Redis: at most ``limit`` attempts in any window, across every process.

Sign-in, share and reset passwords rest on these limits; a limit that let twice its number through at the
edge of a clock-aligned window would double every guesser's rate.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from satchel.adapters.redis import Redis, RedisRateLimiter

T = TypeVar("T")


def with_limiter(redis_url: str, use: Callable[[RedisRateLimiter], Awaitable[T]]) -> T:
    async def run() -> T:
        redis = Redis(redis_url)
        try:
            return await use(RedisRateLimiter(redis))
        finally:
            await redis.close()

    return asyncio.run(run())


def test_no_window_lets_more_than_the_limit_through_not_even_across_a_second_boundary(redis_url: str) -> None:
    key = f"test:{uuid.uuid4().hex}"

    async def hits(limiter: RedisRateLimiter) -> tuple[list[int], list[int]]:
        before = [await limiter.hit(key, limit=3, window=2) for _ in range(4)]
        await asyncio.sleep(2 - time.time() % 2 + 0.05)  # past the edge a clock-aligned 2 s window would reset at
        return before, [await limiter.hit(key, limit=3, window=2) for _ in range(2)]

    before, after = with_limiter(redis_url, hits)
    assert before[:3] == [0, 0, 0] and before[3] > 0
    assert all(wait > 0 for wait in after), "the three allowed are still within the last two seconds"


def test_whoever_waits_as_long_as_told_gets_in_and_refusals_do_not_push_the_wait_back(redis_url: str) -> None:
    key = f"test:{uuid.uuid4().hex}"

    async def hits(limiter: RedisRateLimiter) -> tuple[int, list[int], int]:
        assert await limiter.hit(key, limit=1, window=2) == 0
        told = await limiter.hit(key, limit=1, window=2)
        refused = [await limiter.hit(key, limit=1, window=2) for _ in range(5)]
        await asyncio.sleep(told)
        return told, refused, await limiter.hit(key, limit=1, window=2)

    told, refused, later = with_limiter(redis_url, hits)
    assert told in (1, 2) and all(0 < wait <= told for wait in refused)
    assert later == 0


def test_every_process_counts_against_the_same_limit(redis_url: str) -> None:
    key = f"test:{uuid.uuid4().hex}"

    async def many(limiter: RedisRateLimiter) -> list[int]:
        others = [Redis(redis_url) for _ in range(4)]  # as four web processes, each with its own connections
        try:
            limiters = [limiter, *(RedisRateLimiter(r) for r in others)]
            return list(await asyncio.gather(*(limiters[n % 5].hit(key, limit=7, window=60) for n in range(40))))
        finally:
            for other in others:
                await other.close()

    waits = with_limiter(redis_url, many)
    assert waits.count(0) == 7 and all(0 < wait <= 60 for wait in waits if wait)
