from __future__ import annotations

import pytest

from shared.errors import RateLimited
from shared.ratelimit import RateLimiter
from shared.store import Store

pytestmark = pytest.mark.anyio


async def test_a_burst_passes_then_rate_limited_with_retry_after(store: Store) -> None:
    limiter = RateLimiter(store.redis, store.scripts, per_minute=6, burst=3)
    for _ in range(3):
        await limiter.check("alice", "send")
    with pytest.raises(RateLimited) as info:
        await limiter.check("alice", "send")
    assert 9_000 <= (info.value.retry_after_ms or 0) <= 10_000
    await limiter.check("bob", "send")  # buckets are per user
