"""The same load on one Valkey and on a local Redis Cluster of three Valkey primaries, on this
machine: message saves/s and deltas/s from one process (many in flight, threads spread over the
partitions), and the fan-out latency of a delta (appended -> heard by a listener of its thread's
channel, through sharded pub/sub), with the share of the commands each primary served.

    .venv/bin/python -m bench.cluster

One machine runs every primary and the client: the figures compare the shapes' overheads (cluster
routing, one connection per primary), not the throughput several machines would add.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from bench.support import pct
from tests.support import procs
from tests.support.cluster import local_cluster
from threadline.server.fanout import ChangeListener
from threadline.shared import keys
from threadline.shared.records import Message, TextPart
from threadline.shared.storage.client import connect
from threadline.shared.threads import Store

SAVES = int(os.environ.get("BENCH_MESSAGES", "6000"))
THREADS = int(os.environ.get("BENCH_CONCURRENT", "32"))  # threads written at once
LISTENED = int(os.environ.get("BENCH_SUBSCRIBERS", "50"))  # threads whose deltas a listener hears
PARTS = b'[{"type":"text","text":"w "}]'


@contextlib.contextmanager
def store(primaries: int) -> Iterator[tuple[str, list[int]]]:
    """A store of ``primaries`` primaries (1: a plain Valkey): its URL and its primaries' ports."""
    with tempfile.TemporaryDirectory() as tmp:
        if primaries == 1:
            proc, port = procs.start_valkey(Path(tmp))
            try:
                yield f"redis://127.0.0.1:{port}/0", [port]
            finally:
                procs.stop(proc)
        else:
            with local_cluster(Path(tmp), primaries) as ports:
                yield f"redis://127.0.0.1:{ports[0]}/0", ports


def served(ports: list[int]) -> list[int]:
    """Commands each primary has served so far."""
    counts = []
    for port in ports:
        with redis.Redis(port=port) as node:
            counts.append(int(node.info("stats")["total_commands_processed"]))
    return counts


def message(i: int) -> Message:
    text = f"message number {i} with a few words of text in it"
    return Message(message_id="", thread_id="", role="user", text=text, parts=[TextPart(text=text)])


class Heard:
    """A listener that notes when each delta of a channel was heard."""

    def __init__(self) -> None:
        self.at: dict[bytes, float] = {}

    def heard(self, channel: str, data: bytes) -> None:
        self.at[data] = time.perf_counter()

    def resync(self) -> None:
        pass


async def run(url: str) -> tuple[float, float, float, float]:
    client = connect(url, max_connections=THREADS * 2)
    st = Store(client)
    try:
        threads = [(await st.threads.create(f"u{i}")).thread_id for i in range(THREADS)]

        async def saves(tid: str, n: int) -> None:
            for i in range(n):
                await st.messages.save(tid, None, [message(i)])

        t0 = time.perf_counter()
        await asyncio.gather(*(saves(t, SAVES // THREADS) for t in threads))
        saves_s = SAVES / (time.perf_counter() - t0)

        streams = []
        for tid in threads:
            _, (reply,) = await st.messages.save(tid, None, [Message(message_id="", thread_id="", role="assistant",
                                                                     status="pending", text="")])
            sid, _ = await st.streams.open(reply, agent_name="bench", prompt_message_id=reply.message_id)
            streams.append((tid, sid))

        async def deltas(tid: str, sid: str, n: int) -> None:
            for _ in range(n):
                await st.streams.append(tid, sid, PARTS, "w ")

        t0 = time.perf_counter()
        await asyncio.gather(*(deltas(tid, sid, SAVES // THREADS) for tid, sid in streams))
        deltas_s = SAVES / (time.perf_counter() - t0)

        listener, heard = ChangeListener(client), Heard()
        listener.start()
        try:
            watched = streams[:LISTENED]
            await listener.ref([keys.delta_channel(tid) for tid, _ in watched], heard)
            samples = []
            for _ in range(max(1, 400 // len(watched))):
                for tid, sid in watched:
                    before = len(heard.at)
                    t0 = time.perf_counter()
                    await st.streams.append(tid, sid, PARTS, "w ")
                    while len(heard.at) == before:
                        await asyncio.sleep(0)
                        if time.perf_counter() - t0 > 5:
                            raise TimeoutError("a delta was never heard")
                    samples.append((max(heard.at.values()) - t0) * 1000)
        finally:
            await listener.stop()
        return saves_s, deltas_s, pct(samples, 50), pct(samples, 99)
    finally:
        await client.aclose()


async def main() -> None:
    rows = []
    for primaries in (1, 3):
        with store(primaries) as (url, ports):
            before = served(ports)
            figures = await run(url)
            after = served(ports)
        done = [b - a for a, b in zip(before, after, strict=True)]
        share = " / ".join(f"{100 * d / max(1, sum(done)):.0f}%" for d in done)
        rows.append((primaries, *figures, share))
    print(f"{SAVES:,} message saves and {SAVES:,} deltas over {THREADS} threads, one client process")
    for primaries, saves_s, deltas_s, p50, p99, share in rows:
        print(f"{primaries} primar{'y' if primaries == 1 else 'ies'}: message saves/s {saves_s:,.0f}, "
              f"deltas/s {deltas_s:,.0f}, fan-out of a delta p50 {p50:.2f} ms p99 {p99:.2f} ms, "
              f"commands served per primary {share}")


if __name__ == "__main__":
    asyncio.run(main())
