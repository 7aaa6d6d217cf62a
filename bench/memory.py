"""Memory benchmark (prints figures): index 10,000 messages of one user through the
index process, then time hybrid searches against the embedded store.

    .venv/bin/python -m bench.memory
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time

import msgspec

from bench.support import pct, redis_url
from shared.memory.ops import OPS
from shared.memory.rpc import SearchRequest
from shared.memory.search import RemoteSearch
from shared.records import Message
from shared.redis_client import connect
from shared.store import Store
from tests.support import procs

COUNT = int(os.environ.get("BENCH_MESSAGES", "10000"))
SEARCHES = int(os.environ.get("BENCH_SEARCHES", "300"))
VOCAB = ("travel budget hotel flight museum coffee meeting report deadline garden recipe pasta invoice "
         "printer weather forecast holiday car dog puppy mountain river bicycle concert ticket library book "
         "project design canvas heading pricing footer signup button photo camera").split()


def sentence(rng: random.Random, i: int) -> str:
    words = rng.choices(VOCAB, k=rng.randint(6, 18))
    if i % 997 == 0:
        words.append(f"code{i}")  # a rare keyword now and then
    return " ".join(words)


async def main() -> None:
    rng = random.Random(7)
    with redis_url() as url, tempfile.TemporaryDirectory() as tmp:
        client = connect(url)
        store = Store(client)
        thread_ids = [(await store.threads.create("bench")).thread_id for _ in range(20)]
        index = subprocess.Popen([sys.executable, "-m", "workers", "index"], cwd=procs.ROOT,
                                 env=procs.child_env(REDIS_URL=url, DATA_DIR=tmp), start_new_session=True,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            t0 = time.perf_counter()
            for start in range(0, COUNT, 500):
                tid = thread_ids[(start // 500) % len(thread_ids)]
                batch = [Message(message_id="", thread_id="", text=sentence(rng, start + j))
                         for j in range(min(500, COUNT - start))]
                await store.messages.save(tid, "bench", batch)
            saved = time.perf_counter() - t0
            while await client.llen(OPS):
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # the last batch being written
            indexed = time.perf_counter() - t0
            search = RemoteSearch(client)
            rpc, text_only = [], []
            for i in range(SEARCHES):
                q = " ".join(rng.choices(VOCAB, k=4))
                req = SearchRequest(user_id="bench", thread_id=thread_ids[i % 20], text=q, other_threads=True,
                                    limit=10, text_search=True, vector_search=True)
                t = time.perf_counter()
                hits = await search.search(req)
                rpc.append((time.perf_counter() - t) * 1000)
                assert hits
                t = time.perf_counter()
                await search.search(msgspec.structs.replace(req, vector_search=False))
                text_only.append((time.perf_counter() - t) * 1000)
        finally:
            procs.stop(index)
            await client.aclose()
    # the same searches in-process on the embedded store, without the Redis hop: as the index
    # process runs them (in-memory mirror), and through qdrant-client's local mode itself
    direct, local = await in_process(rng)
    print(f"indexing: {COUNT:,} messages of one user saved in {saved:.1f} s, embedded (hashing, 256 dims) "
          f"and in the embedded Qdrant store after {indexed:.1f} s: {COUNT / indexed:,.0f} messages/s")
    print(f"hybrid search (dense + sparse, RRF), {COUNT:,} points, embedded store, in the index process: "
          f"p50 {pct(direct, 50):.1f} ms, p99 {pct(direct, 99):.1f} ms   (target p50 <= 50 ms)")
    print(f"  the same through qdrant-client's local mode query API (MEMORY_SEARCH=qdrant): "
          f"p50 {pct(local, 50):.1f} ms, p99 {pct(local, 99):.1f} ms ({len(local)} searches)")
    print(f"  from another process through the index process (Redis RPC): p50 {pct(rpc, 50):.1f} ms, "
          f"p99 {pct(rpc, 99):.1f} ms; text-only p50 {pct(text_only, 50):.1f} ms")


async def in_process(rng: random.Random) -> tuple[list[float], list[float]]:
    from qdrant_client import QdrantClient

    from shared.memory.embeddings import HashingEmbedder
    from shared.memory.sparse import document_vector, query_vector
    from shared.memory.vectors import Point, VectorIndex

    emb = HashingEmbedder()
    with tempfile.TemporaryDirectory() as tmp:
        plain = VectorIndex(QdrantClient(path=tmp), server=False)
        name = plain.ensure(emb.model, emb.dim)
        texts = [sentence(rng, i) for i in range(COUNT)]
        points = [Point(f"m{i}", emb.embed_one(t), document_vector(t),
                        {"ref": f"m{i}", "userId": "bench", "threadId": f"t{i % 20}", "kind": "message",
                         "order": i})
                  for i, t in enumerate(texts)]
        for start in range(0, COUNT, 1000):
            plain.upsert(name, points[start:start + 1000])
        mirrored = VectorIndex(plain.client, server=False, mirror=True)
        mirrored.ensure(emb.model, emb.dim)
        assert len(mirrored._mirrors[name]) == COUNT  # every point is in the mirror

        def timed(index: VectorIndex, n: int) -> list[float]:
            samples = []
            for i in range(n):
                q = " ".join(rng.choices(VOCAB, k=4))
                t = time.perf_counter()
                index.search(name, user_id="bench", thread_id=f"t{i % 20}", before_order=None, other_threads=True,
                             dense=emb.embed_one(q), sparse=query_vector(q), limit=10)
                samples.append((time.perf_counter() - t) * 1000)
            return samples

        fast, slow = timed(mirrored, SEARCHES), timed(plain, 20)
        plain.client.close()
    return fast, slow


if __name__ == "__main__":
    asyncio.run(main())
