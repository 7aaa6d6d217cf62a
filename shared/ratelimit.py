"""Rate limits: a token bucket per (user, action) in Redis."""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from shared import keys
from shared.errors import RateLimited
from shared.redis_client import redis_errors
from shared.store._scripts import Scripts


class RateLimiter:
    """``per_minute`` actions a minute on average, ``burst`` at once."""

    def __init__(self, redis: aioredis.Redis, scripts: Scripts, *, per_minute: int, burst: int) -> None:
        self._scripts = scripts
        self._capacity = burst
        self._per_ms = per_minute / 60_000

    async def check(self, user_id: str, action: str) -> None:
        """Take one token; RateLimited (with retryAfterMs) when the bucket is empty."""
        if self._per_ms <= 0:
            return
        with redis_errors():
            allowed, wait = await self._scripts.run(
                "rate_limit", [keys.rate_limit(user_id, action)],
                [self._capacity, self._per_ms, int(time.time() * 1000), 1],
            )
        if not allowed:
            raise RateLimited(f"too many {action} requests; retry in {int(wait) / 1000:.1f}s",
                              retry_after_ms=int(wait))
