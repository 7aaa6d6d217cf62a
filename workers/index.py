"""The index process: embeds saved messages and snippets, removes deleted ones, answers searches.

In embedded mode it is the one process that opens the local Qdrant store (a
second one fails on the store's lock). With QDRANT_URL, run as many as needed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import msgspec

from threadline.shared import logs, metrics
from threadline.shared.config import Settings
from threadline.shared.errors import ChatError
from threadline.shared.indexing.ops import ALIVE, RPC, decode_op
from threadline.shared.runtime import Runtime, process_settings
from threadline.shared.storage.client import Client, as_bytes, connect
from threadline.shared.threads import Store
from threadline.shared.vectors.edge import EdgeIndex
from threadline.shared.vectors.embeddings import embedder_for
from threadline.shared.vectors.indexer import Indexer
from threadline.shared.vectors.rpc import SearchAnswer, decode_call, encode_answer
from threadline.shared.vectors.vectors import VectorStore
from threadline.workers.ops_queue import OpsQueue
from threadline.workers.reembed import queue_everything

log = logging.getLogger("threadline.workers.index")
BATCH = 1024  # ops per pass: a backlog (a migration) is embedded and written in large batches
PROGRESS_S = 5.0
GIVE_UP_AFTER = 4  # unexpected failures in a row before a batch is dropped
RECOVER_EVERY = 5  # heartbeats (seconds) between looks for ops held by dead index processes
EMBEDDED_DIR = "vectors"  # under DATA_DIR: one Qdrant Edge shard per collection


def open_index(settings: Settings) -> VectorStore:
    """A Qdrant server with QDRANT_URL; else the embedded engine under DATA_DIR (this process only)."""
    if settings.qdrant_url:
        from qdrant_client import QdrantClient

        from threadline.shared.vectors.server import VectorIndex

        return VectorIndex(QdrantClient(url=settings.qdrant_url), server=True)
    return EdgeIndex(Path(settings.data_dir) / EMBEDDED_DIR)


async def ops_loop(indexer: Indexer, redis: Client, queue: OpsQueue) -> None:
    told = time.monotonic()
    failures = 0  # batches in a row that failed unexpectedly
    while True:
        raw = await queue.take(BATCH)
        if not raw:
            continue
        batch = [op for op in map(decode_op, raw) if op is not None]
        if len(batch) < len(raw):
            log.warning("dropped %d index ops this version cannot read", len(raw) - len(batch))
        try:
            await indexer.apply(batch)
            await indexer.flush()  # persisted before the ops are let go: a kill then loses none
            await queue.done()
            failures = 0
            metrics.index_ops.inc(len(batch))
            lag = queue.waiting
            metrics.index_lag.set(lag)
            if lag and time.monotonic() - told > PROGRESS_S:  # a backlog (a migration, a re-embed)
                told = time.monotonic()
                log.info("indexing: %d documents embedded so far, %d ops waiting", indexer.indexed, lag)
        except ChatError as exc:  # e.g. the embedding endpoint is down: try these again later
            log.warning("indexing failed (%s); retrying in 2s", exc.message)
            await queue.give_back()
            await asyncio.sleep(2)
        except Exception:
            failures += 1
            if failures < GIVE_UP_AFTER:  # (a storage hiccup on a loaded machine: the ops are tried again)
                log.exception("indexing a batch of %d ops failed; trying again", len(batch))
                await queue.give_back()
                await asyncio.sleep(failures)
            else:  # a batch that fails for a bug would fail forever: dropped, and logged
                log.exception("indexing a batch of %d ops failed %d times in a row: dropped", len(batch), failures)
                await queue.done()
                failures = 0


async def rpc_loop(indexer: Indexer, redis: Client) -> None:
    async def answer(raw: bytes) -> None:
        try:
            call = decode_call(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            log.warning("ignoring a search call this version cannot read")
            return
        try:
            body = SearchAnswer(ok=True, hits=await indexer.search(call.request))
        except Exception as exc:
            log.exception("search failed")
            body = SearchAnswer(ok=False, error=str(exc))
        async with redis.pipeline(transaction=True) as pipe:
            pipe.rpush(call.reply, encode_answer(body))
            pipe.expire(call.reply, 30)
            await pipe.execute()

    running: set[asyncio.Task[None]] = set()
    while True:
        item = await redis.blpop([RPC], timeout=1)
        if item is not None:
            task = asyncio.create_task(answer(as_bytes(item[1])))
            running.add(task)
            task.add_done_callback(running.discard)


async def keep_alive(redis: Client, queue: OpsQueue) -> None:
    beats = 0
    while True:
        await redis.set(ALIVE, b"1", px=5000)
        await queue.beat()
        if beats % RECOVER_EVERY == 0:  # ops a dead index process held go back to the list
            await queue.recover()
        beats += 1
        await asyncio.sleep(1)


async def migrate_embedded(data_dir: Path, store: Store) -> None:
    """Vectors of the earlier embedded store (qdrant-client's local mode, DATA_DIR/qdrant) are
    not carried over: every message and snippet is embedded again from Redis, the store of record,
    with progress in the log. The old directory is kept, renamed, until someone removes it."""
    old = data_dir / "qdrant"
    if not old.is_dir():
        return
    log.info("migrating the embedded vector store to Qdrant Edge: re-embedding from Redis")
    messages, snippets = await queue_everything(store)
    old.rename(data_dir / "qdrant.migrated")
    log.info("migration: %d messages and %d snippets queued; the old store is in %s",
             messages, snippets, data_dir / "qdrant.migrated")


async def main() -> None:
    rt = Runtime(process_settings(), max_connections=16)
    settings, store = rt.settings, rt.store
    logs.setup("index", settings.log_level, settings.log_json)
    metrics.serve(settings.metrics_port)
    indexer = Indexer(store, embedder_for(settings), open_index(settings), rt.usage)
    log.info("index process ready (%s, embedder %s)",
             settings.qdrant_url or f"embedded store under {settings.data_dir}", indexer.embedder.model)
    if not settings.qdrant_url:
        await migrate_embedded(Path(settings.data_dir), store)
    ops_redis = connect(settings.redis_url, max_connections=4)
    queue = OpsQueue(ops_redis)
    await queue.beat()
    await queue.listen()
    await asyncio.gather(ops_loop(indexer, ops_redis, queue),
                         rpc_loop(indexer, connect(settings.redis_url, max_connections=4)),
                         keep_alive(store.redis, queue))


def run() -> None:
    asyncio.run(main())
