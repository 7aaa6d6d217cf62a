"""Rate-limit benchmark (prints figures): what one check costs a request (p50/p99, one at a
time), and how many checks one Redis answers per second with many in flight; each check takes
from the rules a busy app would have (a per-user bucket, a per-team window, a global token bucket).

    .venv/bin/python -m bench.limits
"""

from __future__ import annotations

import asyncio
import os
import time

from bench.support import pct, redis_url
from threadline.shared.errors import RateLimited
from threadline.shared.storage.client import connect
from threadline.shared.storage.scripts import Scripts
from threadline.shared.usage.limits import Limit, Limits, Who

CHECKS = int(os.environ.get("BENCH_CHECKS", "5000"))
CONCURRENCY = 64
RULES = [
    Limit(name="sends", limit=600, period_s=60, burst=100),  # per user
    Limit(name="team", limit=100_000, period_s=60, kind="fixed_window", per="team"),
    Limit(name="all", limit=1_000_000_000, period_s=60, per="global"),
]


async def main() -> None:
    with redis_url() as url:
        redis = connect(url, max_connections=CONCURRENCY * 2)
        limits = Limits(redis, Scripts(redis), RULES)
        await limits.take("messages", Who("warm", teams=("t",)))
        samples = []
        for i in range(CHECKS):
            t = time.perf_counter()
            await limits.take("messages", Who(f"u{i % 500}", teams=(f"team{i % 20}",)))
            samples.append((time.perf_counter() - t) * 1000)
        refused = 0

        async def lane(n: int, offset: int) -> None:
            nonlocal refused
            for i in range(n):
                try:
                    await limits.take("messages", Who(f"c{(offset + i) % 5000}", teams=(f"team{i % 20}",)))
                except RateLimited:
                    refused += 1

        per_lane = max(1, CHECKS * 4 // CONCURRENCY)
        t0 = time.perf_counter()
        await asyncio.gather(*(lane(per_lane, k * 1000) for k in range(CONCURRENCY)))
        rate = per_lane * CONCURRENCY / (time.perf_counter() - t0)
        await redis.aclose()
    print(f"rate-limit check (3 rules: per-user bucket, per-team window, global bucket), one at a time: "
          f"p50 {pct(samples, 50):.3f} ms, p99 {pct(samples, 99):.3f} ms")
    print(f"rate-limit checks with {CONCURRENCY} in flight from one process: {rate:,.0f} checks/s on one Redis "
          f"({refused:,} refused)")


if __name__ == "__main__":
    asyncio.run(main())
