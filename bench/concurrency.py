"""Concurrent generation benchmark (prints figures; asserts nothing about time).

One reply alone, then 100 and 1,000 at once, with the default configuration
(WORKERS generation processes x WORKER_CONCURRENCY replies each, one web
process), the mock model at 20 ms per word and 100 words; each reply on its own
thread with one subscriber (the tab that sent it). Prints the makespan divided
by one reply alone, send -> first delta p50/p99, deltas/s delivered, missed and
duplicated seqs, and the generation workers' RSS (in all, and per reply in
flight beyond the idle processes); then the same sizes through the least path
of threadline's shape, which stores nothing (bench.peers' floor).

    .venv/bin/python -m bench.concurrency          # BENCH_SIZES=100,1000 by default
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import uvloop

from bench.generation import SECRET, Tab, finished, seq_totals
from bench.support import group_rss_mb, pct, redis_url
from tests.support import procs
from threadline.shared import gc_tuning

SIZES = [int(x) for x in os.environ.get("BENCH_SIZES", "100,1000").split(",")]
WORDS = int(os.environ.get("BENCH_WORDS", "100"))
DELAY_MS = int(os.environ.get("BENCH_DELAY_MS", "20"))
ENV = {"MOCK_LLM_DELAY_MS": str(DELAY_MS), "MOCK_LLM_WORDS": str(WORDS), "RATE_LIMIT_SENDS_PER_MINUTE": "0"}


def workers_rss_mb(group: int) -> float:
    """Total RSS of the worker pool and its workers."""
    return sum(group_rss_mb(group).values())


def cpu_seconds() -> dict[str, float]:
    """CPU time (user + system) of the processes in the benchmark, by kind."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        kind = next((k for k, needle in (("web", "server web"), ("workers", "worker-pool"), ("valkey", "valkey"),
                                         ("client", "bench.concurrency")) if needle in cmd), None)
        if kind is not None:
            out[kind] = out.get(kind, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


async def open_users(url: str, n: int, tag: str) -> list[tuple[Tab, str]]:
    async def one(i: int) -> tuple[Tab, str]:
        tab = await Tab.open(url, f"{tag}{i}", f"{tag}{i}")
        await tab.send({"type": "mutate", "id": "c", "name": "threads.create", "args": {}})
        tid = (await tab.wait(lambda f: f.get("id") == "c", 120))[1]["value"]["threadId"]
        await tab.send({"type": "subscribe", "id": "m", "query": "messages.list",
                        "args": {"threadId": tid, "streams": True, "paginationOpts": {"numItems": 5}}})
        await tab.wait(lambda f: f.get("id") == "m", 120)
        return tab, tid

    users: list[tuple[Tab, str]] = []
    for start in range(0, n, 100):  # connect in batches: the web process has two cores to share
        users += await asyncio.gather(*(one(i) for i in range(start, min(n, start + 100))))
    return users


async def wave(url: str, n: int, worker_group: int) -> dict[str, float]:
    users = await open_users(url, n, f"c{n}-")
    idle_rss = workers_rss_mb(worker_group)
    peak = [idle_rss]
    sampling = True

    async def sample() -> None:
        while sampling:
            peak[0] = max(peak[0], workers_rss_mb(worker_group))
            await asyncio.sleep(0.1)

    sampler = asyncio.create_task(sample())
    t0 = time.perf_counter()
    sent: list[float] = []
    for tab, tid in users:
        sent.append(time.perf_counter())
        await tab.send({"type": "mutate", "id": "go", "name": "messages.send",
                        "args": {"threadId": tid, "prompt": "go", "agentName": "assistant"}})
    acked = []
    for tab, _ in users:
        acked.append((await tab.wait(lambda f: f["type"] == "mutated" and f["id"] == "go", 600))[0])
    print(f"  ({n} sends acknowledged after {max(acked) - t0:.2f} s)", flush=True)
    firsts, ends = [], []
    for (tab, _), at in zip(users, sent, strict=True):
        t_first, _ = await tab.wait(lambda f: f["type"] == "delta", 600)
        t_end, _ = await tab.wait(finished(1), 600)
        firsts.append((t_first - at) * 1000)
        ends.append(t_end)
    makespan = max(ends) - t0
    sampling = False
    await sampler
    deltas, missed, dupes = seq_totals(tab for tab, _ in users)
    await asyncio.gather(*(tab.ws.close() for tab, _ in users))
    return {"makespan": makespan, "first_p50": pct(firsts, 50), "first_p99": pct(firsts, 99),
            "rate": deltas / makespan, "missed": missed, "dupes": dupes, "idle_rss": idle_rss,
            "peak_rss": peak[0], "per_reply_kb": (peak[0] - idle_rss) * 1024 / n}


async def shape_floor(redis: str, sizes: list[int]) -> None:
    """The same sizes through the least path of threadline's shape (bench.peers' floor: an RQ job of
    the pool publishing its deltas on Redis pub/sub, bench.peer_pubsub forwarding them to the tabs,
    nothing stored): its makespan against one of its replies alone."""
    from bench import peers  # (here: bench.peers imports this module)

    await peers.idle_queue(redis)  # (the titles of the last wave's threads)
    peer, port = peers.start_peer("bench.peer_pubsub", REDIS_URL=redis)
    try:
        alone = []
        for _ in range(3):
            tabs = await peers.floor_tabs(port, 1)
            alone.append(await peers.deliver_floor(redis, tabs, WORDS, DELAY_MS))
            await tabs[0].close()
        one = min(alone)
        for n in sizes:
            tabs = await peers.floor_tabs(port, n)
            makespan = await peers.deliver_floor(redis, tabs, WORDS, DELAY_MS)
            await asyncio.gather(*(ws.close() for ws in tabs))
            print(f"{n:>5} at once through the floor of this shape (nothing stored; bench.peers): makespan "
                  f"{makespan:.2f} s = {makespan / one:.2f}x one alone ({one:.2f} s)")
    finally:
        procs.stop(peer)


async def main() -> None:
    gc_tuning.tune("10000,10,10")
    with redis_url() as redis, tempfile.TemporaryDirectory() as tmp:
        web, port = procs.start_web(redis, auth_secret=SECRET, extra_env=ENV, log=Path(tmp) / "web.log")
        with open(Path(tmp) / "worker.log", "ab") as out:
            worker = subprocess.Popen([sys.executable, "-m", "threadline.workers", "generation"], cwd=procs.ROOT,
                                      env=procs.child_env(REDIS_URL=redis, AUTH_SECRET=SECRET, **ENV),
                                      stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"ws://127.0.0.1:{port}/ws"
        try:
            await asyncio.sleep(4)  # let the pool start
            alone = []
            for i in range(3):
                (tab, tid), = await open_users(url, 1, f"alone{i}-")
                t0 = time.perf_counter()
                await tab.send({"type": "mutate", "id": "go", "name": "messages.send",
                                "args": {"threadId": tid, "prompt": "go", "agentName": "assistant"}})
                t_end, _ = await tab.wait(finished(1), 60)
                alone.append(t_end - t0)
                await tab.ws.close()
            one = min(alone)
            print(f"one reply alone (mock, {WORDS} words at {DELAY_MS} ms): {one:.2f} s")
            for n in SIZES:
                before = cpu_seconds()
                r = await wave(url, n, worker.pid)
                spent = {k: v - before.get(k, 0.0) for k, v in cpu_seconds().items()}
                print("  CPU seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(spent.items()) if v > 0.05))
                print(f"{n:>5} at once: makespan {r['makespan']:.2f} s = {r['makespan'] / one:.2f}x one alone; "
                      f"first delta p50 {r['first_p50']:.0f} ms, p99 {r['first_p99']:.0f} ms; "
                      f"{r['rate']:,.0f} deltas/s; missed {r['missed']}, duplicated {r['dupes']}; "
                      f"workers RSS {r['idle_rss']:.0f} MB idle, {r['peak_rss']:.0f} MB peak "
                      f"({r['per_reply_kb']:.0f} KB per reply in flight)")
            await shape_floor(redis, SIZES)
        finally:
            procs.stop(worker)
            procs.stop(web)


if __name__ == "__main__":
    uvloop.run(main())
