"""Searching memory from any process.

With a Qdrant server (QDRANT_URL), a process searches it directly. In embedded
mode only the index process may open the store, so others ask it over Redis:
a ``SearchCall`` on one list, the ``SearchAnswer`` on the call's reply list
(see shared.vectors.rpc).
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Protocol

from threadline.shared import keys
from threadline.shared.config import Settings
from threadline.shared.errors import Unavailable
from threadline.shared.indexing.ops import ALIVE, RPC
from threadline.shared.storage.client import Client, as_bytes, redis_errors
from threadline.shared.vectors.rpc import (
    ChunkSearchRequest,
    Hit,
    SearchCall,
    SearchRequest,
    decode_answer,
    encode_call,
)

if TYPE_CHECKING:
    from threadline.shared.threads import Store
    from threadline.shared.usage.ledger import UsageLedger
    from threadline.shared.vectors.indexer import Indexer

RPC_TIMEOUT_S = 5


class MemorySearch(Protocol):
    async def search(self, request: SearchRequest | ChunkSearchRequest) -> list[Hit]: ...


class RemoteSearch:
    """Asks the index process (embedded mode)."""

    def __init__(self, redis: Client) -> None:
        self._redis = redis

    async def search(self, request: SearchRequest | ChunkSearchRequest) -> list[Hit]:
        reply = keys.vector_rpc_reply(secrets.token_hex(8))
        with redis_errors():
            if not await self._redis.exists(ALIVE):
                raise Unavailable("no index process is running (`python -m threadline.workers index`)")
            await self._redis.rpush(RPC, encode_call(SearchCall(request=request, reply=reply)))
            answer = await self._redis.blpop([reply], timeout=RPC_TIMEOUT_S)
        if answer is None:
            raise Unavailable("the index process did not answer (is `python -m threadline.workers index` running?)")
        body = decode_answer(as_bytes(answer[1]))
        if not body.ok:
            raise Unavailable(f"memory search failed: {body.error}")
        return body.hits


class DirectSearch:
    """Searches a Qdrant server from this process."""

    def __init__(self, indexer: Indexer) -> None:
        self._indexer = indexer

    async def search(self, request: SearchRequest | ChunkSearchRequest) -> list[Hit]:
        return await self._indexer.search(request)


def memory_search_for(settings: Settings, store: Store, ledger: UsageLedger) -> MemorySearch:
    if settings.qdrant_url:
        from qdrant_client import QdrantClient

        from threadline.shared.vectors.embeddings import embedder_for
        from threadline.shared.vectors.indexer import Indexer
        from threadline.shared.vectors.server import VectorIndex

        index = VectorIndex(QdrantClient(url=settings.qdrant_url), server=True)
        return DirectSearch(Indexer(store, embedder_for(settings), index, ledger))
    return RemoteSearch(store.redis)
