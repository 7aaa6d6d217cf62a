"""Kill the index process in the middle of a backlog, start another: every message and every
chunk of a document ends up indexed once, none is lost (ops are taken, not popped)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.support import procs
from tests.support.replies import partition_total
from tests.support.store import store_server, sync_client
from threadline.shared import keys
from threadline.shared.records import Message
from threadline.shared.storage.client import SyncClient, connect
from threadline.shared.threads import Store
from threadline.shared.vectors.edge import EdgeIndex
from threadline.shared.vectors.embeddings import HashingEmbedder

MESSAGES = 3000
DOC = "\n\n".join(f"Paragraph {i} about harbour pilots and tide tables number {i}." for i in range(300))


def start_index(url: str, data: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "threadline.workers", "index"], cwd=procs.ROOT,
                                env=procs.child_env(REDIS_URL=url, DATA_DIR=str(data)), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


TAKEN = keys.in_partition(0, keys.vector_ops_taken("*")).replace("{p0000}", "{p*}")  # every process's, anywhere


def waiting(sync: SyncClient) -> int:
    """Ops waiting, over every partition."""
    return partition_total(sync, keys.VECTOR_OPS, "llen")


def test_a_killed_index_process_loses_no_op(tmp_path: Path) -> None:
    with store_server(tmp_path / "store") as url:
        _killed_index(tmp_path, url)


def _killed_index(tmp_path: Path, url: str) -> None:
    data = tmp_path / "data"
    sync = sync_client(url)
    index: subprocess.Popen[bytes] | None = None
    try:
        async def fill() -> None:
            client = connect(url)
            store = Store(client)
            tid = (await store.threads.create("alice")).thread_id
            for start in range(0, MESSAGES, 500):
                await store.messages.save(tid, "alice", [Message(message_id="", thread_id="", text=f"note w{i} here")
                                                         for i in range(start, start + 500)])
            await store.documents.add("user:alice", "pilots.txt", DOC.encode(), chunk_size=200, chunk_overlap=0)
            await client.aclose()

        asyncio.run(fill())
        assert waiting(sync) == MESSAGES + 1

        index = start_index(url, data, tmp_path / "index1.log")
        deadline = time.monotonic() + 60
        while max((sync.llen(k) for k in sync.scan_iter(match=TAKEN)), default=0) < 100:
            assert time.monotonic() < deadline and index.poll() is None  # wait for the middle of a batch
            time.sleep(0.002)
        os.killpg(index.pid, signal.SIGKILL)
        dead = f"{socket.gethostname()}:{index.pid}"  # (its name: workers.ops_queue.OpsQueue.owner)
        index.wait()
        held = sum(sync.llen(k) for k in sync.scan_iter(match=TAKEN))
        assert held >= 100  # the batch it was working on is kept, not lost

        index = start_index(url, data, tmp_path / "index2.log")
        deadline = time.monotonic() + 90
        # read in the order ops move: the dead one's given back (their owner is forgotten after they are
        # queued again), then waiting, then taken; read the other way, a give-back between two reads
        # looked like nothing left (a batch of 1,024 ops missing in the count, twice on a loaded machine)
        while (sync.sismember(keys.VECTOR_INDEXERS, dead) or waiting(sync) or next(sync.scan_iter(match=TAKEN), None)
               or b'"status":"ready"' not in (sync.hget(keys.rag_documents("user:alice"), "pilots.txt") or b"")):
            assert time.monotonic() < deadline, (tmp_path / "index2.log").read_text()[-2000:]
            assert index.poll() is None
            time.sleep(0.1)
        index.send_signal(signal.SIGTERM)
        index.wait(30)
        index = None

        emb = HashingEmbedder()
        store = EdgeIndex(data / "vectors")
        try:
            (name,) = store.collections()
            assert name.endswith(f"_{emb.dim}")
            chunks = _chunks(sync)
            assert len(chunks) > 50
            logs = "".join((tmp_path / f"index{n}.log").read_text()[-3000:] for n in (1, 2))
            assert store.count(name) == MESSAGES + len(chunks), logs  # each message and chunk once
        finally:
            store.close()
    finally:
        if index is not None:
            procs.stop(index)
        sync.close()


def _chunks(sync: SyncClient) -> list[bytes]:
    doc = sync.hget(keys.rag_documents("user:alice"), "pilots.txt")
    assert doc is not None
    import msgspec

    from threadline.shared.documents.store import Document

    d = msgspec.json.decode(doc, type=Document)
    return list(sync.hkeys(keys.rag_chunks("user:alice", "pilots.txt", d.ready_version)))
