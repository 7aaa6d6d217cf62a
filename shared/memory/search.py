"""Searching memory from any process.

With a Qdrant server (QDRANT_URL), a process searches it directly. In embedded
mode only the index process may open the store, so others ask it over Redis:
a request on one list, the answer on a reply key.
"""

from __future__ import annotations

import json
import secrets
from typing import Any, Protocol

import redis.asyncio as aioredis

from shared import keys
from shared.config import Settings
from shared.errors import Unavailable
from shared.memory.ops import ALIVE, RPC
from shared.redis_client import redis_errors

RPC_TIMEOUT_S = 5


class MemorySearch(Protocol):
    async def search(self, request: dict[str, Any]) -> list[dict[str, Any]]: ...


class RemoteSearch:
    """Asks the index process (embedded mode)."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def search(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        reply = keys.vector_rpc_reply(secrets.token_hex(8))
        with redis_errors():
            if not await self._redis.exists(ALIVE):
                raise Unavailable("no index process is running (`python -m workers index`)")
            await self._redis.rpush(RPC, json.dumps({**request, "reply": reply}))
            answer = await self._redis.blpop([reply], timeout=RPC_TIMEOUT_S)
        if answer is None:
            raise Unavailable("the index process did not answer (is `python -m workers index` running?)")
        body = json.loads(answer[1])
        if not body.get("ok"):
            raise Unavailable(f"memory search failed: {body.get('error')}")
        return body["hits"]  # type: ignore[no-any-return]


class DirectSearch:
    """Searches a Qdrant server from this process."""

    def __init__(self, indexer: Any) -> None:
        self._indexer = indexer

    async def search(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        return await self._indexer.search(request)  # type: ignore[no-any-return]


def memory_search_for(settings: Settings, store: Any) -> MemorySearch:
    if settings.qdrant_url:
        from qdrant_client import QdrantClient

        from shared.memory.embeddings import embedder_for
        from shared.memory.indexer import Indexer
        from shared.memory.vectors import VectorIndex

        index = VectorIndex(QdrantClient(url=settings.qdrant_url), server=True)
        return DirectSearch(Indexer(store, embedder_for(settings), index))
    return RemoteSearch(store.redis)
