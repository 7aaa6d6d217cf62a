"""Thread-length benchmark (prints figures): what a reply and a status-filtered read cost in a thread
of 100 messages and in one of 100,000, with the stack as `scripts/run` starts it (a web process, a
generation worker, the mock model at 0 ms) and a client speaking the public protocol.

For each size (the long one: BENCH_LONG): `messages.send` to the reply's final result at a subscriber (p50 over RUNS replies),
and `messages.list` with `statuses: ["pending"]` over HTTP (p50). Target: at 100,000 messages
within 1.5x of 100.

    .venv/bin/python -m bench.thread_length
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import httpx
import uvloop

from bench.generation import SECRET, Tab, finished, run
from bench.support import pct, redis_url
from tests.support import procs
from threadline.shared.auth import mint
from threadline.shared.records import Message
from threadline.shared.storage.client import connect
from threadline.shared.threads import Store

SIZES = (100, int(os.environ.get("BENCH_LONG", "100000")))
RUNS = int(os.environ.get("BENCH_RUNS", "40"))
USER = "long"


async def fill(redis: str, size: int) -> str:
    """A thread of ``size`` messages (each a user message: its own order)."""
    client = connect(redis)
    store = Store(client)
    tid = (await store.threads.create(USER)).thread_id
    for start in range(0, size, 500):
        await store.messages.save(tid, USER, [Message(message_id="", thread_id="", text=f"note {i} of the thread")
                                              for i in range(start, min(size, start + 500))])
    await client.aclose()
    return tid


async def replies(url: str, tid: str, size: int) -> list[float]:
    tab = await Tab.open(url, USER, f"len{size}")
    await tab.send({"type": "subscribe", "id": "m", "query": "messages.list",
                    "args": {"threadId": tid, "streams": True, "paginationOpts": {"numItems": 5}}})
    await tab.wait(lambda f: f.get("id") == "m")
    took = []
    for i in range(RUNS + 3):
        t0 = time.perf_counter()
        await tab.send({"type": "mutate", "id": f"s{i}", "name": "messages.send",
                        "args": {"threadId": tid, "prompt": f"run {i}", "agentName": "assistant"}})
        t_done, _ = await tab.wait(finished(size + i + 1))
        if i >= 3:
            took.append((t_done - t0) * 1000)
        tab.frames.clear()
    await tab.ws.close()
    return took


async def filtered_reads(base: str, tid: str) -> list[float]:
    headers = {"Authorization": f"Bearer {mint(SECRET, USER)}"}
    took = []
    async with httpx.AsyncClient(base_url=base, headers=headers) as http:
        for _ in range(RUNS):
            t0 = time.perf_counter()
            r = await http.get(f"/api/threads/{tid}/messages", params={"numItems": 20, "statuses": "pending"})
            r.raise_for_status()
            took.append((time.perf_counter() - t0) * 1000)
    return took


async def main() -> None:
    figures = {}
    with redis_url() as redis, tempfile.TemporaryDirectory() as tmp:
        url, web, worker = await run(redis, Path(tmp), 0, 40, 1)  # type: ignore[misc]
        base = url.replace("ws://", "http://").removesuffix("/ws")
        try:
            for size in SIZES:
                tid = await fill(redis, size)
                figures[size] = (pct(await replies(url, tid, size), 50), pct(await filtered_reads(base, tid), 50))
                print(f"{size:,}-message thread: messages.send -> final result p50 {figures[size][0]:.1f} ms; "
                      f"messages.list statuses=[pending] p50 {figures[size][1]:.2f} ms")
        finally:
            procs.stop(worker)
            procs.stop(web)
    (small_reply, small_read), (big_reply, big_read) = figures[SIZES[0]], figures[SIZES[-1]]
    print(f"at {SIZES[-1]:,} messages: a reply costs {big_reply / small_reply:.2f}x, a filtered read "
          f"{big_read / small_read:.2f}x what they cost at {SIZES[0]:,}   (target <= 1.5x)")


if __name__ == "__main__":
    uvloop.run(main())
