"""Generation benchmark (prints figures; asserts nothing about time).

1. Mock model at 0 ms delay: from `messages.send` to the first delta at a
   subscriber, and to the final result, over 200 runs (one at a time). Then
   at a model's pace (a token every 40 ms, each but the first with a leading
   space, as real models send them): how long after the model's first token
   the first delta reaches the tab, over 50 runs.
2. 50 concurrent generations, 10 subscribers each (on one web process, two
   generation worker processes): deltas delivered per second, and how many seqs
   were missed or duplicated (must be 0).

    .venv/bin/python -m bench.generation
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import uvloop
import websockets

from bench.support import group_rss_mb, pct, redis_url
from tests.support import procs
from threadline.shared import gc_tuning
from threadline.shared.auth import mint

SECRET = "bench-secret-0123456789abcdef0123456789"
NO_LIMIT = {"RATE_LIMIT_SENDS_PER_MINUTE": "0"}  # load tests measure delivery, not the limiter
RUNS = int(os.environ.get("BENCH_RUNS", "200"))
CONCURRENT = int(os.environ.get("BENCH_CONCURRENT", "50"))
WATCHERS = int(os.environ.get("BENCH_WATCHERS", "10"))
PACE_MS, PACE_RUNS = 40, min(50, RUNS)


class Tab:
    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.frames: list[tuple[float, dict]] = []  # type: ignore[type-arg]
        self.event = asyncio.Event()
        self.task = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str, user: str, cid: str) -> Tab:
        ws = await websockets.connect(url, max_size=None, ping_interval=None)
        await ws.send(json.dumps({"type": "connect", "protocol": 1, "token": mint(SECRET, user), "clientId": cid}))
        await ws.recv()
        return cls(ws)

    async def _read(self) -> None:
        async for raw in self.ws:
            self.frames.append((time.perf_counter(), json.loads(raw)))
            self.event.set()

    async def wait(self, pred, timeout: float = 180.0) -> tuple[float, dict]:  # type: ignore[no-untyped-def, type-arg]
        start = 0
        try:
            async with asyncio.timeout(timeout):
                while True:
                    for i in range(start, len(self.frames)):
                        if pred(self.frames[i][1]):
                            return self.frames[i]
                    start = len(self.frames)
                    self.event.clear()
                    await self.event.wait()
        except TimeoutError:  # say what came instead (the benchmark's caller shows it)
            last = [json.dumps(f)[:300] for _, f in self.frames[-3:]]
            raise TimeoutError(f"no such frame in {timeout:.0f} s; {len(self.frames)} frames, the last: {last}") from None

    async def send(self, frame: dict) -> None:  # type: ignore[type-arg]
        await self.ws.send(json.dumps(frame))


def seq_counts(frames: list[dict[str, Any]]) -> tuple[int, int, int]:
    """(deltas, missed, duplicated) of one subscription's frames. A stream's seqs are counted from the
    ``seq`` of the first result that shows it (that result carries the text so far: docs/protocol.md,
    Streams), so a stream a tab first sees at seq 5 misses nothing when its deltas start at 6, nor one
    whose every delta came before that result."""
    first_seen: dict[str, int] = {}
    for f in frames:
        if f["type"] == "result":
            for stream in f["value"].get("streams") or []:
                first_seen.setdefault(stream["streamId"], stream["seq"])
    deltas = missed = dupes = 0
    by_stream: dict[str, list[int]] = {}
    for f in frames:
        if f["type"] == "delta":
            by_stream.setdefault(f["streamId"], []).append(f["seq"])
    for stream_id, seqs in by_stream.items():
        deltas += len(seqs)
        dupes += len(seqs) - len(set(seqs))
        start = first_seen.get(stream_id, 0)
        missed += max(0, max(seqs) - start - len({s for s in seqs if s > start}))  # (0: all came before it)
    return deltas, missed, dupes


def seq_totals(tabs: Iterable[Tab]) -> tuple[int, int, int]:
    """(deltas, missed, duplicated) of the tabs' subscriptions, summed (seq_counts of each)."""
    totals = [seq_counts([f for _, f in tab.frames]) for tab in tabs]
    return sum(t[0] for t in totals), sum(t[1] for t in totals), sum(t[2] for t in totals)


def finished(order: int):  # type: ignore[no-untyped-def]
    def pred(f: dict) -> bool:  # type: ignore[type-arg]
        return f["type"] == "result" and any(
            m["order"] == order and m["role"] == "assistant" and m["status"] == "success" for m in f["value"]["page"])
    return pred


async def latency(url: str, runs: int = RUNS, client_id: str = "lat") -> tuple[list[float], list[float]]:
    tab = await Tab.open(url, "lat", client_id)  # (a client's request ids are answered once: one per series)
    await tab.send({"type": "mutate", "id": "c", "name": "threads.create", "args": {}})
    tid = (await tab.wait(lambda f: f.get("id") == "c"))[1]["value"]["threadId"]
    await tab.send({"type": "subscribe", "id": "m", "query": "messages.list",
                    "args": {"threadId": tid, "streams": True, "paginationOpts": {"numItems": 5}}})
    await tab.wait(lambda f: f.get("id") == "m")
    first, final = [], []
    for i in range(runs + 5):
        t0 = time.perf_counter()
        await tab.send({"type": "mutate", "id": f"s{i}", "name": "messages.send",
                        "args": {"threadId": tid, "prompt": f"run {i}", "agentName": "assistant"}})
        t_delta, _ = await tab.wait(lambda f: f["type"] == "delta")
        t_done, _ = await tab.wait(finished(i + 1))
        if i >= 5:  # warm-up runs (imports, connections) are not counted
            first.append((t_delta - t0) * 1000)
            final.append((t_done - t0) * 1000)
        tab.frames.clear()
    await tab.ws.close()
    return first, final


async def concurrent(url: str) -> tuple[float, int, int, int]:
    writers = [await Tab.open(url, f"u{i}", f"w{i}") for i in range(CONCURRENT)]
    tids = []
    for w in writers:
        await w.send({"type": "mutate", "id": "c", "name": "threads.create", "args": {}})
        tids.append((await w.wait(lambda f: f.get("id") == "c"))[1]["value"]["threadId"])
    watchers: list[list[Tab]] = []
    for i, tid in enumerate(tids):
        group = [await Tab.open(url, f"u{i}", f"u{i}-tab{j}") for j in range(WATCHERS)]
        for tab in group:
            await tab.send({"type": "subscribe", "id": "m", "query": "messages.list",
                            "args": {"threadId": tid, "streams": True, "paginationOpts": {"numItems": 5}}})
            await tab.wait(lambda f: f.get("id") == "m")
        watchers.append(group)
    t0 = time.perf_counter()
    for w, tid in zip(writers, tids, strict=True):
        await w.send({"type": "mutate", "id": "go", "name": "messages.send",
                      "args": {"threadId": tid, "prompt": "go", "agentName": "assistant"}})
    for group in watchers:
        for tab in group:
            await tab.wait(finished(1), timeout=180)
    elapsed = time.perf_counter() - t0
    deltas, missed, dupes = seq_totals(tab for group in watchers for tab in group)
    for tab in [*writers, *(t for g in watchers for t in g)]:
        await tab.ws.close()
    return deltas / elapsed, deltas, missed, dupes


async def run(redis: str, tmp: Path, delay_ms: int, words: int, workers: int) -> str:
    env = {"MOCK_LLM_DELAY_MS": str(delay_ms), "MOCK_LLM_WORDS": str(words), "WORKERS": str(workers),
           "DATA_DIR": str(tmp / "data"), **NO_LIMIT}
    web, port = procs.start_web(redis, auth_secret=SECRET, extra_env=env, log=tmp / "web.log")
    with open(tmp / "worker.log", "ab") as out:
        worker = subprocess.Popen([sys.executable, "-m", "threadline.workers", "generation"], cwd=procs.ROOT,
                                  env=procs.child_env(REDIS_URL=redis, AUTH_SECRET=SECRET, **env),
                                  stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    await asyncio.sleep(3 + workers * 0.1)  # let the pool start
    return f"ws://127.0.0.1:{port}/ws", web, worker  # type: ignore[return-value]


def worker_rss_mb(group: int) -> float:
    """Mean RSS of the worker processes in the pool's process group (the pool itself excluded)."""
    sizes = [mb for pid, mb in group_rss_mb(group).items() if pid != group]
    return sum(sizes) / len(sizes) if sizes else 0.0


async def main() -> None:
    gc_tuning.tune("10000,10,10")
    with redis_url() as redis, tempfile.TemporaryDirectory() as tmp:
        try:
            await phases(redis, Path(tmp))
        except BaseException:  # what the processes said, before the directory goes
            for name in ("web.log", "worker.log"):
                log = Path(tmp) / name
                tail = log.read_text(errors="replace").splitlines()[-30:] if log.exists() else []
                print(f"--- the last lines of {name}:", *tail, sep="\n", file=sys.stderr)
            raise


async def phases(redis: str, tmp: Path) -> None:
    """The three measurements, each with its own web and worker processes (logs in ``tmp``)."""
    url, web, worker = await run(redis, tmp, 0, 40, 2)  # type: ignore[misc]
    try:
        first, final = await latency(url)
    finally:
        procs.stop(worker)
        procs.stop(web)
    print(f"mock model at 0 ms, {RUNS} runs: messages.send -> first delta p50 {pct(first, 50):.1f} ms, "
          f"p99 {pct(first, 99):.1f} ms; -> final result p50 {pct(final, 50):.1f} ms, "
          f"p99 {pct(final, 99):.1f} ms   (target first-delta p50 <= 25 ms)")
    url, web, worker = await run(redis, tmp, PACE_MS, 6, 1)  # type: ignore[misc]
    try:
        paced, _ = await latency(url, PACE_RUNS, "paced")
    finally:
        procs.stop(worker)
        procs.stop(web)
    quiet = pct(first, 50)
    print(f"mock model at {PACE_MS} ms per token, {PACE_RUNS} runs: messages.send -> first delta p50 "
          f"{pct(paced, 50):.1f} ms, p99 {pct(paced, 99):.1f} ms: the first delta comes "
          f"{pct(paced, 50) - PACE_MS - quiet:.1f} ms after the model's first token (p50, beyond the "
          f"{quiet:.1f} ms of a 0 ms model)   (target <= 15 ms)")
    url, web, worker = await run(redis, tmp, 20, 40, 2)  # type: ignore[misc]
    try:
        rate, total, missed, dupes = await concurrent(url)
        rss = worker_rss_mb(worker.pid)
    finally:
        procs.stop(worker)
        procs.stop(web)
    print(f"{CONCURRENT} concurrent generations x {WATCHERS} subscribers (mock, 40 words, 20 ms/word, "
          f"2 worker processes): {rate:,.0f} deltas/s delivered ({total:,} in all); "
          f"missed seqs {missed}, duplicated seqs {dupes}   (target 0 and 0)")
    print(f"generation worker memory: {rss:.0f} MB RSS per worker process (many replies at once each)")


if __name__ == "__main__":
    uvloop.run(main())
