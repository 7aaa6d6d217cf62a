"""Fan-out benchmark (prints figures; asserts nothing about time).

1. One thread, N WebSocket subscribers (messages.list) on one web process; a
   mutation (messages.send) every 100 ms; latency from sending the mutation to
   the last subscriber's `result`, and results delivered per second.
2. The same broadcast with python-socketio + AsyncRedisManager (the peer), same
   payload, same clients count, side by side.
3. RSS growth of one web process for M idle authenticated connections, each with one subscription.

    .venv/bin/python -m bench.fanout            # N=1000, M=5000
    BENCH_SUBSCRIBERS=200 BENCH_IDLE=1000 .venv/bin/python -m bench.fanout
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import uvloop
import websockets

from bench.support import pct, redis_url
from tests.support import procs
from threadline.shared import gc_tuning
from threadline.shared.auth import mint
from threadline.shared.storage.embedded import free_port

SECRET = "bench-secret-0123456789abcdef0123456789"
NO_LIMIT = {"RATE_LIMIT_SENDS_PER_MINUTE": "0"}  # load tests measure delivery, not the limiter
N = int(os.environ.get("BENCH_SUBSCRIBERS", "1000"))
IDLE = int(os.environ.get("BENCH_IDLE", "5000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "100"))
INTERVAL_S = 0.1
_VERSION = re.compile(rb'"version":(\d+)')
_SEQ = re.compile(rb'"seq":(\d+)')


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def gather_in_batches(coros: list, size: int = 100) -> list:  # type: ignore[type-arg]
    out = []
    for i in range(0, len(coros), size):
        out += await asyncio.gather(*coros[i:i + size])
    return out


def summarize(name: str, sent: dict[int, float], arrivals: list[tuple[int, float]], n: int) -> dict[str, float]:
    last: dict[int, float] = {}
    count: dict[int, int] = {}
    for key, t in arrivals:
        if key in sent:
            last[key] = max(last.get(key, 0.0), t)
            count[key] = count.get(key, 0) + 1
    complete = [k for k in sent if count.get(k, 0) == n]
    lat = [(last[k] - sent[k]) * 1000 for k in complete]
    span = max(last.values()) - min(sent.values())
    delivered = sum(count.values())
    return {"p50": pct(lat, 50), "p99": pct(lat, 99), "rate": delivered / span,
            "complete": len(complete), "rounds": len(sent), "name": name}  # type: ignore[dict-item]


# -- ours ----------------------------------------------------------------------

async def ours(base: str, n: int = N, interval_s: float = INTERVAL_S) -> tuple[dict[str, float], str]:
    ws_url = base.replace("http", "ws") + "/ws"
    token = mint(SECRET, "bench")
    run = secrets.token_hex(4)  # request ids are answered once per client id: a second run needs new ones

    async def open_conn(i: int) -> websockets.ClientConnection:
        ws = await websockets.connect(ws_url, max_size=None, ping_interval=None)
        await ws.send(json.dumps({"type": "connect", "protocol": 1, "token": token, "clientId": f"c{i}-{run}"}))
        await ws.recv()
        return ws

    writer = await open_conn(-1)

    async def mutate(rid: str, name: str, args: dict) -> dict:  # type: ignore[type-arg]
        await writer.send(json.dumps({"type": "mutate", "id": rid, "name": name, "args": args}))
        while True:
            frame = json.loads(await writer.recv())
            if frame.get("id") == rid:
                return frame

    tid = (await mutate("create", "threads.create", {"title": "bench"}))["value"]["threadId"]
    for i in range(10):
        await mutate(f"seed{i}", "messages.send", {"threadId": tid, "generate": False,
                                                   "prompt": f"seed message {i} " + "lorem ipsum " * 8})
    subs = await gather_in_batches([open_conn(i) for i in range(n)])
    sub_frame = json.dumps({"type": "subscribe", "id": "m", "query": "messages.list",
                            "args": {"threadId": tid, "paginationOpts": {"numItems": 10}}})
    payload = ""
    for ws in subs:
        await ws.send(sub_frame)
    for ws in subs:
        payload = await ws.recv()  # the initial result
    arrivals: list[tuple[int, float]] = []

    async def read(ws: websockets.ClientConnection) -> None:
        async for raw in ws:
            t = time.perf_counter()
            m = _VERSION.search(raw[:200].encode() if isinstance(raw, str) else raw[:200])
            if m:
                arrivals.append((int(m.group(1)), t))

    readers = [asyncio.create_task(read(ws)) for ws in subs]
    sent_by_id: dict[str, float] = {}
    version_of: dict[str, int] = {}

    async def read_writer() -> None:
        async for raw in writer:
            frame = json.loads(raw)
            if frame.get("type") == "mutated" and frame.get("ok"):
                version_of[frame["id"]] = frame["version"]

    writer_reader = asyncio.create_task(read_writer())
    start = time.perf_counter()
    for i in range(ROUNDS):
        await asyncio.sleep(max(0.0, start + i * interval_s - time.perf_counter()))
        rid = f"r{i}"
        sent_by_id[rid] = time.perf_counter()
        await writer.send(json.dumps({"type": "mutate", "id": rid, "name": "messages.send",
                                      "args": {"threadId": tid, "generate": False,
                                               "prompt": f"round {i} " + "lorem ipsum " * 8}}))
    await asyncio.sleep(2.0)
    for t in [*readers, writer_reader]:
        t.cancel()
    await asyncio.gather(*[ws.close() for ws in [*subs, writer]], return_exceptions=True)
    sent = {version_of[r]: t for r, t in sent_by_id.items() if r in version_of}
    return summarize("threadline", sent, arrivals, n), json.loads(payload)["value"]


# -- the peer: python-socketio + AsyncRedisManager -----------------------------

async def peer(redis: str, value: object) -> dict[str, float]:
    port = free_port()
    env = procs.child_env(REDIS_URL=redis, PORT=str(port))
    proc = subprocess.Popen([sys.executable, "-m", "bench.peer_socketio"], env=env, cwd=procs.ROOT)
    try:
        procs.wait_for_port(port, proc)
        url = f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"

        async def open_conn() -> websockets.ClientConnection:
            ws = await websockets.connect(url, max_size=None, ping_interval=None)
            await ws.recv()  # engine.io open
            await ws.send("40")  # socket.io connect to "/"
            while not (await ws.recv()).startswith("40"):
                pass
            return ws

        writer = await open_conn()
        subs = await gather_in_batches([open_conn() for _ in range(N)])
        arrivals: list[tuple[int, float]] = []

        async def read(ws: websockets.ClientConnection) -> None:
            async for raw in ws:
                t = time.perf_counter()
                if raw == "2":
                    await ws.send("3")  # engine.io pong
                    continue
                m = _SEQ.search(raw[:60].encode())
                if m:
                    arrivals.append((int(m.group(1)), t))

        readers = [asyncio.create_task(read(ws)) for ws in [*subs, writer]]
        await asyncio.sleep(0.5)
        sent: dict[int, float] = {}
        start = time.perf_counter()
        for i in range(ROUNDS):
            await asyncio.sleep(max(0.0, start + i * INTERVAL_S - time.perf_counter()))
            sent[i] = time.perf_counter()
            await writer.send("42" + json.dumps(["publish", {"seq": i, "value": value}]))
        await asyncio.sleep(2.0)
        for t in readers:
            t.cancel()
        await asyncio.gather(*[ws.close() for ws in [*subs, writer]], return_exceptions=True)
        # the writer receives the broadcast too: count only the N subscribers
        return summarize("python-socketio", sent, arrivals, N + 1)
    finally:
        procs.stop(proc)


# -- memory ------------------------------------------------------------------------

async def idle_memory(redis: str) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = procs.start_web(redis, auth_secret=SECRET, log=Path(tmp) / "web.log", extra_env=NO_LIMIT)
        try:
            url = f"ws://127.0.0.1:{port}/ws"
            token = mint(SECRET, "idle")

            async def open_conn(i: int) -> websockets.ClientConnection:
                ws = await websockets.connect(url, ping_interval=None)
                await ws.send(json.dumps({"type": "connect", "protocol": 1, "token": token, "clientId": f"i{i}"}))
                await ws.recv()
                await ws.send(json.dumps({"type": "subscribe", "id": "t", "query": "threads.list", "args": {}}))
                await ws.recv()  # its first result
                return ws

            warm = await gather_in_batches([open_conn(i) for i in range(50)])
            await asyncio.sleep(1.0)
            before = rss_kb(proc.pid)
            conns = await gather_in_batches([open_conn(i) for i in range(IDLE)], size=200)
            await asyncio.sleep(2.0)
            after = rss_kb(proc.pid)
            await gather_in_batches([ws.close() for ws in [*warm, *conns]], size=500)
            return (after - before) * 1024 / IDLE, after
        finally:
            procs.stop(proc)


async def main() -> None:
    gc_tuning.tune("10000,10,10")  # the client process too: its pauses are not the server's
    parts = set(os.environ.get("BENCH_PARTS", "fanout,memory").split(","))
    with redis_url() as redis, tempfile.TemporaryDirectory() as tmp:
        if "fanout" in parts:
            proc, port = procs.start_web(redis, auth_secret=SECRET, log=Path(tmp) / "web.log", extra_env=NO_LIMIT)
            try:
                mine, value = await ours(f"http://127.0.0.1:{port}")
            finally:
                procs.stop(proc)
            theirs = await peer(redis, value)
            print(f"fan-out: 1 thread, {N} subscribers on one web process, a mutation every 100 ms, "
                  f"{ROUNDS} rounds, result value {len(json.dumps(value))} bytes")
            for r in (mine, theirs):
                print(f"  {r['name']:<16} mutation -> last subscriber: p50 {r['p50']:.1f} ms, "
                      f"p99 {r['p99']:.1f} ms; {r['rate']:,.0f} results/s; "
                      f"{r['complete']}/{r['rounds']} rounds reached everyone")
            print(f"  p99 ratio (python-socketio / threadline): {theirs['p99'] / mine['p99']:.2f}x   "
                  f"(target >= 2x; threadline target p99 <= 100 ms)")
        if "memory" in parts:
            per_conn, total = await idle_memory(redis)
            print(f"memory: {IDLE} idle authenticated connections with one subscription: {per_conn / 1024:.1f} KB "
                  f"each (RSS {total / 1024:.0f} MB)   (target <= 20 KB)")


if __name__ == "__main__":
    uvloop.run(main())
