"""The index process: embeds saved messages and snippets, removes deleted ones, answers searches.

In embedded mode it is the one process that opens the local Qdrant store (a
second one fails on the store's lock). With QDRANT_URL, run as many as needed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

from qdrant_client import QdrantClient

from shared import logs, metrics
from shared.config import Settings, load_settings
from shared.errors import ChatError
from shared.memory.embeddings import embedder_for
from shared.memory.indexer import Indexer
from shared.memory.ops import ALIVE, OPS, RPC
from shared.memory.vectors import VectorIndex
from shared.redis_client import connect
from shared.store import Store

log = logging.getLogger("workers.index")
BATCH = 256


def open_index(settings: Settings) -> VectorIndex:
    if settings.qdrant_url:
        return VectorIndex(QdrantClient(url=settings.qdrant_url), server=True)
    path = Path(settings.data_dir) / "qdrant"
    path.mkdir(parents=True, exist_ok=True)
    return VectorIndex(QdrantClient(path=str(path)), server=False, mirror=settings.memory_search == "mirror")


async def ops_loop(indexer: Indexer, redis: object) -> None:
    while True:
        item = await redis.blpop([OPS], timeout=1)  # type: ignore[attr-defined]
        if item is None:
            continue
        batch = [item[1].decode()] + [b.decode() for b in (await redis.lpop(OPS, BATCH - 1) or [])]  # type: ignore[attr-defined]
        try:
            await indexer.apply(batch)
            metrics.index_ops.inc(len(batch))
            metrics.index_lag.set(await redis.llen(OPS))  # type: ignore[attr-defined]
        except ChatError as exc:  # e.g. the embedding endpoint is down: try these again later
            log.warning("indexing failed (%s); retrying in 2s", exc.message)
            await redis.rpush(OPS, *batch)  # type: ignore[attr-defined]
            await asyncio.sleep(2)
        except Exception:
            log.exception("indexing a batch of %d ops failed", len(batch))


async def rpc_loop(indexer: Indexer, redis: object) -> None:
    async def answer(raw: bytes) -> None:
        req = json.loads(raw)
        try:
            body = {"ok": True, "hits": await indexer.search(req)}
        except Exception as exc:
            log.exception("search failed")
            body = {"ok": False, "error": str(exc)}
        await redis.rpush(req["reply"], json.dumps(body))  # type: ignore[attr-defined]
        await redis.expire(req["reply"], 30)  # type: ignore[attr-defined]

    running: set[asyncio.Task[None]] = set()
    while True:
        item = await redis.blpop([RPC], timeout=1)  # type: ignore[attr-defined]
        if item is not None:
            task = asyncio.create_task(answer(item[1]))
            running.add(task)
            task.add_done_callback(running.discard)


async def keep_alive(redis: object) -> None:
    while True:
        await redis.set(ALIVE, b"1", px=5000)  # type: ignore[attr-defined]
        await asyncio.sleep(1)


async def main() -> None:
    settings = load_settings()
    logs.setup("index", settings.log_level, settings.log_json)
    metrics.serve(settings.metrics_port)
    store = Store(connect(settings.redis_url, max_connections=16))
    indexer = Indexer(store, embedder_for(settings), open_index(settings))
    log.info("index process ready (%s, embedder %s)",
             settings.qdrant_url or f"embedded store under {settings.data_dir}", indexer.embedder.model)
    await asyncio.gather(ops_loop(indexer, connect(settings.redis_url, max_connections=4)),
                         rpc_loop(indexer, connect(settings.redis_url, max_connections=4)),
                         keep_alive(store.redis))


def run() -> None:
    asyncio.run(main())
