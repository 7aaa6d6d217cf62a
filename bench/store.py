"""Store benchmark: message saves per second from one process; listing the newest 50
messages of a 10,000-message thread (p50/p99).

    .venv/bin/python -m bench.store
"""

from __future__ import annotations

import asyncio
import time

from bench.support import pct, redis_url
from threadline.shared.records import Message, TextPart
from threadline.shared.storage.client import connect
from threadline.shared.threads import Store

SAVES = 20_000
CONCURRENCY = 32
THREAD_SIZE = 10_000
LISTS = 2_000


def msg(i: int) -> Message:
    text = f"message number {i} with a few words of text in it"
    return Message(message_id="", thread_id="", role="user", text=text, parts=[TextPart(text=text)])


async def saves_per_second(store: Store) -> tuple[float, float]:
    thread = await store.threads.create("bench")
    # sequential: one save at a time, each waiting for Redis
    n_seq = 3_000
    t0 = time.perf_counter()
    for i in range(n_seq):
        await store.messages.save(thread.thread_id, "bench", [msg(i)])
    sequential = n_seq / (time.perf_counter() - t0)
    # concurrent: many requests in flight, as a busy web process has
    threads = [await store.threads.create("bench") for _ in range(CONCURRENCY)]

    async def lane(tid: str, n: int) -> None:
        for i in range(n):
            await store.messages.save(tid, "bench", [msg(i)])

    t0 = time.perf_counter()
    await asyncio.gather(*(lane(t.thread_id, SAVES // CONCURRENCY) for t in threads))
    concurrent = SAVES / (time.perf_counter() - t0)
    return sequential, concurrent


async def list_latency(store: Store) -> tuple[float, float]:
    thread = await store.threads.create("bench")
    batch = 500
    for start in range(0, THREAD_SIZE, batch):
        await store.messages.save(thread.thread_id, "bench", [msg(i) for i in range(start, start + batch)])
    samples = []
    for _ in range(LISTS):
        t0 = time.perf_counter()
        _, page = await store.messages.list(thread.thread_id, "bench", num_items=50)
        samples.append((time.perf_counter() - t0) * 1000)
        assert len(page.page) == 50
    return pct(samples, 50), pct(samples, 99)


async def main() -> None:
    with redis_url() as url:
        client = connect(url, max_connections=CONCURRENCY * 2)
        store = Store(client)
        try:
            seq, conc = await saves_per_second(store)
            p50, p99 = await list_latency(store)
        finally:
            await client.aclose()
    print(f"message saves/s, one process, sequential:          {seq:,.0f}")
    print(f"message saves/s, one process, {CONCURRENCY} in flight:        {conc:,.0f}   (target >= 5,000)")
    print(f"list newest 50 of a {THREAD_SIZE:,}-message thread: p50 {p50:.2f} ms, p99 {p99:.2f} ms"
          "   (target p50 <= 2 ms)")


if __name__ == "__main__":
    asyncio.run(main())
