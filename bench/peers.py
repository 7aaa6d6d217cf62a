"""Peers benchmark (prints figures and ratios): threadline beside the least a server could do for the same
job, in one run on one machine.

1. Fan-out: one frame to every subscriber. threadline: a mutation -> each of N subscribers' new
   `result` (bench.fanout's load: a 6 KB value, a mutation every 100 ms per 1,000 subscribers, so
   10,000 frames/s at any size: what is measured is delivery, not a backlog on two cores that the
   benchmark's own client shares); the peer: a bare `websockets`
   server broadcasting a client's frame of the same size to every connection (bench.peer_broadcast).
   p99 ratio at each size of BENCH_PEER_SIZES (targets: <= 2x at 1,000, <= 2.5x at 5,000).
2. First token: a mock model at 40 ms per token. threadline: messages.send -> first delta at the tab;
   the peer: POST -> first SSE event of the same model relayed by one process (bench.peer_relay).
   Target: threadline within 15 ms of the peer.
3. 100 replies streaming at once (100 words at 40 ms), the default two processes (a web process and a
   generation worker pool): CPU seconds per reply of each process and in all, against the relay
   streaming the same 100 at once (target: <= 2x), the median of BENCH_WAVES waves, each on new threads
   and read once no job is left (a reply's job goes on to title its new thread); beside it, two floors:
   of the path in a worker (an RQ job of the same pool that streams the same model and keeps nothing),
   and of a path of threadline's shape (that job publishing its deltas on Redis pub/sub as ours go, a
   bare `websockets` process forwarding them to the tabs: bench.peer_pubsub; nothing stored); and
   while they stream, a new send's `mutated` and first delta against the same on a quiet system
   (target: <= 3x).

    .venv/bin/python -m bench.peers                 # BENCH_PEER_SIZES=1000,5000
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import redis as redis_sync
import redis.asyncio as aioredis
import uvloop
import websockets
from rq import Queue
from rq.job import Job
from rq.registry import FailedJobRegistry, StartedJobRegistry

from bench.concurrency import open_users
from bench.fanout import ROUNDS, gather_in_batches, ours, summarize
from bench.generation import Tab, finished, latency, run
from bench.support import pct, redis_url
from tests.support import procs
from threadline.shared import gc_tuning, jobs
from threadline.shared.jobs import GENERATION
from threadline.shared.llm.base import ChatRequest, TextDelta
from threadline.shared.llm.mock import MockModel
from threadline.shared.storage.embedded import free_port

SIZES = [int(x) for x in os.environ.get("BENCH_PEER_SIZES", "1000,5000").split(",")]
RUNS = int(os.environ.get("BENCH_RUNS", "30"))
STREAMING = int(os.environ.get("BENCH_CONCURRENT", "100"))
WORDS = int(os.environ.get("BENCH_WORDS", "100"))
PACE_MS = 40
INTERVAL_S = 0.1
PROBES = 5  # sends made while the replies stream (and as many on a quiet system)
WAVES = int(os.environ.get("BENCH_WAVES", "3"))  # of 100 replies (and of the relay's 100): the median is printed


def start_peer(module: str, **env: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", module], env=procs.child_env(PORT=str(port), **env),
                            cwd=procs.ROOT)
    procs.wait_for_port(port, proc)
    return proc, port


def cpu_s(pid: int | None = None, cmdline: str = "") -> float:
    """CPU seconds of a process and its children still running, or of the processes whose command line
    holds ``cmdline`` (from each thread's schedstat: nanoseconds, where stat counts 10 ms ticks)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if cmdline and cmdline not in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode():
                continue
            if cmdline or pid in (int(entry.name), int(fields[2]), int(fields[3])):  # itself, its children
                total += sum(int((task / "schedstat").read_text().split()[0]) for task in (entry / "task").iterdir())
        except (OSError, ValueError):
            continue
    return total / 1e9


# -- 1. fan-out -------------------------------------------------------------------

async def bare_broadcast(n: int, value: Any, interval_s: float) -> dict[str, float]:
    proc, port = start_peer("bench.peer_broadcast")
    try:
        url = f"ws://127.0.0.1:{port}"
        conns = await gather_in_batches([websockets.connect(url, max_size=None, ping_interval=None)
                                         for _ in range(n + 1)])
        writer, subs = conns[0], conns[1:]
        arrivals: list[tuple[int, float]] = []

        async def read(ws: websockets.ClientConnection) -> None:
            async for raw in ws:
                arrivals.append((json.loads(raw)["version"], time.perf_counter()))

        readers = [asyncio.create_task(read(ws)) for ws in subs]
        drain = asyncio.create_task(writer.wait_closed())  # the writer's own copies are left unread
        sent: dict[int, float] = {}
        start = time.perf_counter()
        for i in range(ROUNDS):
            await asyncio.sleep(max(0.0, start + i * interval_s - time.perf_counter()))
            sent[i] = time.perf_counter()
            await writer.send(json.dumps({"type": "result", "id": "m", "version": i, "value": value}))
        await asyncio.sleep(2.0)
        for t in [*readers, drain]:
            t.cancel()
        await asyncio.gather(*[ws.close() for ws in conns], return_exceptions=True)
        return summarize("bare websockets", sent, arrivals, n)
    finally:
        procs.stop(proc)


async def fan_out(redis: str, tmp: Path) -> None:
    for n in SIZES:
        interval_s = INTERVAL_S * max(1.0, n / 1000)  # 10,000 frames/s at any size: delivery, not a backlog
        web, port = procs.start_web(redis, auth_secret="bench-secret-0123456789abcdef0123456789",
                                    log=tmp / f"web-{n}.log", extra_env={"RATE_LIMIT_SENDS_PER_MINUTE": "0"})
        try:
            mine, value = await ours(f"http://127.0.0.1:{port}", n, interval_s)
        finally:
            procs.stop(web)
        floor = await bare_broadcast(n, value, interval_s)
        target = 2.0 if n <= 1000 else 2.5
        print(f"fan-out to {n:,} subscribers ({ROUNDS} rounds, one every {interval_s * 1000:.0f} ms): threadline p50 {mine['p50']:.1f} / "
              f"p99 {mine['p99']:.1f} ms; bare websockets p50 {floor['p50']:.1f} / p99 {floor['p99']:.1f} ms; "
              f"p99 ratio {mine['p99'] / floor['p99']:.2f}x   (target <= {target}x)", flush=True)


# -- 2. first token, 3. under load ----------------------------------------------------

async def relay_first_token(base: str, runs: int) -> list[float]:
    took = []
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        for i in range(runs + 3):
            t0 = time.perf_counter()
            async with http.stream("POST", "/relay", json={"prompt": f"run {i}"}) as r:
                async for line in r.aiter_lines():
                    if line.startswith("data: {"):
                        if i >= 3:
                            took.append((time.perf_counter() - t0) * 1000)
                        break
    return took


async def relay_many(base: str, n: int) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=httpx.Limits(max_connections=n)) as http:
        async def one(i: int) -> None:
            async with http.stream("POST", "/relay", json={"prompt": f"go {i}"}) as r:
                async for _ in r.aiter_lines():
                    pass

        await asyncio.gather(*(one(i) for i in range(n)))


async def probe(url: str, runs: int, tag: str, every_s: float = 0.0) -> tuple[list[float], list[float]]:
    """A new send's `mutated` and first delta (ms), ``runs`` times ``every_s`` apart, each in a thread of
    its own (none waits for a reply to end: under load, every one is sent while the load runs)."""
    tab = await Tab.open(url, tag, tag)
    tids = []
    for i in range(runs):
        await tab.send({"type": "mutate", "id": f"c{i}", "name": "threads.create", "args": {}})
        tids.append((await tab.wait(lambda f, i=i: f.get("id") == f"c{i}"))[1]["value"]["threadId"])
        await tab.send({"type": "subscribe", "id": f"m{i}", "query": "messages.list",
                        "args": {"threadId": tids[i], "streams": True, "paginationOpts": {"numItems": 5}}})
        await tab.wait(lambda f, i=i: f.get("id") == f"m{i}")
    acks, firsts = [], []
    for i, tid in enumerate(tids):
        t0 = time.perf_counter()
        await tab.send({"type": "mutate", "id": f"p{i}", "name": "messages.send",
                        "args": {"threadId": tid, "prompt": f"probe {i}", "agentName": "assistant"}})
        t_ack, _ = await tab.wait(lambda f, i=i: f["type"] == "mutated" and f["id"] == f"p{i}")
        t_first, _ = await tab.wait(lambda f, i=i: f["type"] == "delta" and f["id"] == f"m{i}")
        acks.append((t_ack - t0) * 1000)
        firsts.append((t_first - t0) * 1000)
        await asyncio.sleep(max(0.0, t0 + every_s - time.perf_counter()))
    for i in range(runs):
        await tab.wait(lambda f, i=i: f["type"] == "result" and f["id"] == f"m{i}" and any(
            m["role"] == "assistant" and m["status"] == "success" for m in f["value"]["page"]), 300)
    await tab.ws.close()
    return acks, firsts


async def idle_queue(redis: str) -> None:
    """Until no generation job waits or runs (a reply's job goes on after its final result: the title of
    a new thread), so that a wave's CPU holds all of its work."""
    client = aioredis.Redis.from_url(os.environ.get("RQ_REDIS_URL") or redis)  # (beside a cluster: bench.support)
    started = StartedJobRegistry(GENERATION, connection=redis_sync.Redis()).key  # (its key only: no connection made)
    try:
        while await client.llen(jobs.queue_key(GENERATION)) or await client.zcard(started):
            await asyncio.sleep(0.05)
    finally:
        await client.aclose()


async def floor_job(words: int, pace_ms: int) -> int:
    """The least part of a reply's path that runs in a worker: an RQ job of the pool that streams the
    mock model and keeps nothing (no store, no deltas, no tab). Its CPU is a floor of ours."""
    deltas = 0
    async for event in MockModel(words, pace_ms).stream(ChatRequest(messages=[{"role": "user", "content": "go"}])):
        deltas += isinstance(event, TextDelta)
    return deltas


class _Publisher:
    """A worker's publishes, sent in one pipeline per turn of its loop (as threadline's deltas are)."""

    def __init__(self) -> None:
        self.client = aioredis.Redis.from_url(os.environ.get("RQ_REDIS_URL") or os.environ["REDIS_URL"])
        self._pending: list[tuple[str, str]] = []
        self._sending: asyncio.Task[None] | None = None

    def publish(self, channel: str, data: str) -> None:
        self._pending.append((channel, data))
        if self._sending is None or self._sending.done():
            self._sending = asyncio.get_running_loop().create_task(self._send())

    async def _send(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            async with self.client.pipeline(transaction=False) as pipe:
                for channel, data in batch:
                    pipe.publish(channel, data)
                await pipe.execute()

    async def sent(self) -> None:
        while self._sending is not None and not self._sending.done():
            await asyncio.shield(self._sending)


_publishers: dict[int, _Publisher] = {}  # a worker's, per job loop, kept from job to job


async def floor_publish_job(words: int, pace_ms: int, channel: str) -> int:
    """The floor job that also delivers: it publishes the model's text on ``channel`` as threadline's
    deltas go (the first token at once, then at most every INTERVAL_S; the publishes of all the
    worker's jobs in one pipeline per turn of its loop), then ``[DONE]``; bench.peer_pubsub forwards
    each to its tab. Nothing is stored."""
    publisher = _publishers.setdefault(id(asyncio.get_running_loop()), _Publisher())
    buffered, last, sent = "", 0.0, 0
    async for event in MockModel(words, pace_ms).stream(ChatRequest(messages=[{"role": "user", "content": "go"}])):
        if isinstance(event, TextDelta):
            buffered += event.text
            if not sent or time.monotonic() - last >= INTERVAL_S:
                publisher.publish(channel, buffered)
                buffered, last, sent = "", time.monotonic(), sent + 1
    if buffered:
        publisher.publish(channel, buffered)
        sent += 1
    publisher.publish(channel, "[DONE]")
    await publisher.sent()
    return sent


async def run_floor_jobs(redis: str, func: str, args: list[tuple[Any, ...]], until: Any = None) -> None:
    """Enqueue one floor job (``func``, by its import path: a worker cannot import ``__main__``'s) per
    args on the generation queue, wait for ``until`` (a coroutine) and for the queue to be idle; a
    job that failed fails the benchmark (its CPU would be that of a failure)."""
    with redis_sync.Redis.from_url(os.environ.get("RQ_REDIS_URL") or redis) as connection:
        queue = Queue(GENERATION, connection=connection)
        failed = FailedJobRegistry(GENERATION, connection=connection)
        before = failed.count
        await asyncio.to_thread(queue.enqueue_many, [Queue.prepare_data(func, args=a, result_ttl=500) for a in args])
        if until is not None:
            await until
        await idle_queue(redis)
        if failed.count > before:
            job = Job.fetch(failed.get_job_ids()[-1], connection=connection)
            raise RuntimeError(f"{failed.count - before} floor jobs failed: {job.latest_result()}")


async def floor_wave(redis: str, worker_pid: int) -> float:
    """Worker CPU seconds per floor job, STREAMING at once."""
    before = cpu_s(worker_pid)
    await run_floor_jobs(redis, "bench.peers.floor_job", [(WORDS, PACE_MS)] * STREAMING)
    return (cpu_s(worker_pid) - before) / STREAMING


async def floor_tabs(port: int, n: int) -> list[websockets.ClientConnection]:
    """``n`` tabs of the pub/sub peer, tab i on channel ``floor:t<i>``."""
    tabs = await gather_in_batches([websockets.connect(f"ws://127.0.0.1:{port}", ping_interval=None, max_size=None)
                                    for _ in range(n)])
    for i, ws in enumerate(tabs):
        await ws.send(f"t{i}")
    await asyncio.sleep(0.2)  # (each tab is registered before its first message)
    return tabs


async def deliver_floor(redis: str, tabs: list[websockets.ClientConnection], words: int, pace_ms: int) -> float:
    """One floor_publish_job per tab, all at once; seconds from their enqueueing to the last tab's end."""
    ends: list[float] = []

    async def done(ws: websockets.ClientConnection) -> None:
        async for message in ws:
            if message == "[DONE]":
                ends.append(time.perf_counter())
                return

    t0 = time.perf_counter()
    await run_floor_jobs(redis, "bench.peers.floor_publish_job",
                         [(words, pace_ms, f"floor:t{i}") for i in range(len(tabs))],
                         asyncio.wait_for(asyncio.gather(*(done(ws) for ws in tabs)), 300))
    return max(ends) - t0


async def delivery_floor_wave(redis: str, worker_pid: int, peer: subprocess.Popen[bytes], port: int,
                              store: str) -> dict[str, float]:
    """CPU seconds of the worker, the pub/sub peer and Valkey per floor_publish_job, STREAMING at once, each
    delivered to a tab of its own."""
    tabs = await floor_tabs(port, STREAMING)
    before = {"worker": cpu_s(worker_pid), "peer": cpu_s(peer.pid), "valkey": cpu_s(cmdline=store)}
    await deliver_floor(redis, tabs, WORDS, PACE_MS)
    after = {"worker": cpu_s(worker_pid), "peer": cpu_s(peer.pid), "valkey": cpu_s(cmdline=store)}
    await asyncio.gather(*(ws.close() for ws in tabs))
    return {k: (v - before[k]) / STREAMING for k, v in after.items()}


async def streaming(redis: str, tmp: Path) -> None:
    env = {"MOCK_LLM_DELAY_MS": str(PACE_MS), "MOCK_LLM_WORDS": str(WORDS)}
    relay, relay_port = start_peer("bench.peer_relay", **env)
    try:
        relay_base = f"http://127.0.0.1:{relay_port}"
        relay_first = await relay_first_token(relay_base, RUNS)
        relay_waves = []
        for _ in range(WAVES):
            before = cpu_s(relay.pid)
            await relay_many(relay_base, STREAMING)
            relay_waves.append((cpu_s(relay.pid) - before) / STREAMING)
        relay_cpu = statistics.median(relay_waves)
    finally:
        procs.stop(relay)
    url, web, worker = await run(redis, tmp, PACE_MS, WORDS, 2)  # type: ignore[misc]
    try:
        first, _ = await latency(url, RUNS, "first")
        quiet_ack, quiet_first = await probe(url, PROBES, "quiet", 0.2)
        store = "valkey-server 127.0.0.1:" + redis.rsplit(":", 1)[1].split("/")[0]  # (one node's, on a cluster)
        waves: dict[str, list[float]] = {"web": [], "workers": [], "valkey": []}
        load_ack: list[float] = []
        load_first: list[float] = []
        for wave in range(WAVES):  # each on new threads: every reply is a new chat's first, as a user's is
            users = await open_users(url, STREAMING, f"load{wave}-")
            await idle_queue(redis)
            cpu0 = {"web": cpu_s(web.pid), "workers": cpu_s(worker.pid), "valkey": cpu_s(cmdline=store)}
            for tab, tid in users:
                await tab.send({"type": "mutate", "id": "go", "name": "messages.send",
                                "args": {"threadId": tid, "prompt": "go", "agentName": "assistant"}})
            acks, firsts = await probe(url, PROBES, f"loaded{wave}-", 0.2)  # within the replies' first second
            load_ack += acks
            load_first += firsts
            for tab, _ in users:
                await tab.wait(finished(1), 300)
            await idle_queue(redis)
            replies = STREAMING + PROBES  # (the probes are replies too)
            waves["web"].append((cpu_s(web.pid) - cpu0["web"]) / replies)
            waves["workers"].append((cpu_s(worker.pid) - cpu0["workers"]) / replies)
            waves["valkey"].append((cpu_s(cmdline=store) - cpu0["valkey"]) / replies)
            await asyncio.gather(*(tab.ws.close() for tab, _ in users))
        spent = {k: statistics.median(v) for k, v in waves.items()}
        floor = statistics.median([await floor_wave(redis, worker.pid) for _ in range(WAVES)])
        peer, peer_port = start_peer("bench.peer_pubsub", REDIS_URL=redis)
        try:
            shape = [await delivery_floor_wave(redis, worker.pid, peer, peer_port, store) for _ in range(WAVES)]
            delivered = {k: statistics.median(w[k] for w in shape) for k in shape[0]}
        finally:
            procs.stop(peer)
    finally:
        procs.stop(worker)
        procs.stop(web)
    gap = pct(first, 50) - pct(relay_first, 50)
    print(f"first token, mock model at {PACE_MS} ms per token ({RUNS} runs): threadline send -> first delta p50 "
          f"{pct(first, 50):.1f} ms; direct relay p50 {pct(relay_first, 50):.1f} ms: {gap:+.1f} ms   "
          f"(target <= 15 ms)")
    ours_cpu = sum(spent.values())
    print(f"{STREAMING} replies at once ({WORDS} words at {PACE_MS} ms, median of {WAVES} waves): CPU per reply: threadline "
          f"{ours_cpu * 1000:.1f} ms (web {spent['web'] * 1000:.1f}, workers {spent['workers'] * 1000:.1f}, "
          f"Valkey {spent['valkey'] * 1000:.1f}); direct relay {relay_cpu * 1000:.1f} ms: {ours_cpu / relay_cpu:.2f}x   "
          f"(target <= 2x)")
    print(f"  the floor of the path in a worker (an RQ job of the pool streaming the same model, keeping "
          f"nothing): {floor * 1000:.1f} ms per reply, {floor / relay_cpu:.2f}x the relay")
    shape_cpu = sum(delivered.values())
    print(f"  the floor of a path of this shape (that RQ job publishing its deltas as ours go, a bare websockets "
          f"process forwarding them from Redis pub/sub to the tab; nothing stored): {shape_cpu * 1000:.1f} ms per "
          f"reply (worker {delivered['worker'] * 1000:.1f}, peer {delivered['peer'] * 1000:.1f}, Valkey "
          f"{delivered['valkey'] * 1000:.1f}), {shape_cpu / relay_cpu:.2f}x the relay")
    print("  waves, CPU per reply in all (ms): threadline " + ", ".join(
        f"{sum(v) * 1000:.1f}" for v in zip(*waves.values(), strict=True)) + "; relay " + ", ".join(
        f"{v * 1000:.1f}" for v in relay_waves))
    for name, quiet, loaded in (("mutated", quiet_ack, load_ack), ("first delta", quiet_first, load_first)):
        print(f"  a new send's {name} while they stream: p50 {pct(loaded, 50):.1f} ms vs {pct(quiet, 50):.1f} ms "
              f"quiet: {pct(loaded, 50) / pct(quiet, 50):.2f}x   (target <= 3x)")


async def main() -> None:
    gc_tuning.tune("10000,10,10")  # the client process too: its pauses are not the servers'
    parts = set(os.environ.get("BENCH_PARTS", "fanout,streaming").split(","))
    with redis_url() as redis, tempfile.TemporaryDirectory() as tmp:
        if "streaming" in parts:
            await streaming(redis, Path(tmp))
        if "fanout" in parts:
            await fan_out(redis, Path(tmp))


if __name__ == "__main__":
    uvloop.run(main())
