"""Turns ops into vectors and answers searches (the index process runs this).

In embedded mode this is the only place that opens the local Qdrant store;
qdrant-client calls run on one thread.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from shared.errors import NotFound
from shared.memory.embeddings import Embedder
from shared.memory.ops import IndexOp, indexable
from shared.memory.rpc import Hit, SearchRequest, hit_of
from shared.memory.sparse import document_vector, query_vector
from shared.memory.vectors import Point, VectorIndex
from shared.store import Store

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Doc:
    ref: str
    text: str
    payload: dict[str, Any]


class Indexer:
    def __init__(self, store: Store, embedder: Embedder, index: VectorIndex) -> None:
        self.store = store
        self.embedder = embedder
        self.index = index
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="qdrant")
        self.indexed = 0

    async def _q(self, fn: Any, *args: Any, **kw: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, lambda: fn(*args, **kw))

    async def apply(self, ops: list[IndexOp]) -> int:
        """Apply a batch of ops (see shared.memory.ops); return how many documents were embedded."""
        last: dict[str, str] = {}
        threads: set[str] = set()
        for op in ops:
            if op.kind == "forget_thread":
                threads.add(op.ref)
            else:
                last[op.ref] = op.kind
        for thread_id in threads:
            await self._q(self.index.delete_where, "threadId", thread_id)
        gone = [ref.split("/")[-1] for ref, kind in last.items() if kind in ("forget_message", "forget_snippet")]
        if gone:
            await self._q(self.index.delete_refs, gone)
        docs = []
        for ref, kind in last.items():
            doc = await self._doc(kind, ref)
            if doc is not None:
                docs.append(doc)
        await self.upsert(docs)
        return len(docs)

    async def _doc(self, kind: str, ref: str) -> Doc | None:
        try:
            if kind == "embed_message":
                m = await self.store.messages.get(ref)
                if not indexable(m):
                    return None
                return Doc(m.message_id, m.text, {
                    "ref": m.message_id, "kind": "message", "userId": m.user_id, "threadId": m.thread_id,
                    "messageId": m.message_id, "order": m.order, "stepOrder": m.step_order,
                    "createdAt": m.created_at})
            if kind == "embed_snippet":
                s = await self.store.snippets.get(ref.split("/", 1)[1])
                return Doc(s.snippet_id, s.text, {
                    "ref": s.snippet_id, "kind": "snippet", "userId": s.user_id, "threadId": s.thread_id,
                    "snippetId": s.snippet_id, "messageId": s.message_id, "order": 0, "stepOrder": 0,
                    "createdAt": s.created_at})
        except NotFound:
            return None  # deleted meanwhile: nothing to embed
        return None

    async def upsert(self, docs: list[Doc]) -> None:
        if not docs:
            return
        dense = await self.embedder.embed([d.text for d in docs])
        collection = self.index.ensure(self.embedder.model, len(dense[0]))
        points = [Point(d.ref, v, document_vector(d.text), d.payload) for d, v in zip(docs, dense, strict=True)]
        await self._q(self.index.upsert, collection, points)
        self.indexed += len(points)

    async def search(self, req: SearchRequest) -> list[Hit]:
        """Hybrid search for one request, best fused score first."""
        dense = (await self.embedder.embed([req.text]))[0] if req.vector_search else None
        sparse = query_vector(req.text) if req.text_search else None
        dim = len(dense) if dense is not None else len((await self.embedder.embed(["x"]))[0])
        collection = self.index.ensure(self.embedder.model, dim)
        hits = await self._q(
            self.index.search, collection, user_id=req.user_id, thread_id=req.thread_id,
            before_order=req.before_order, other_threads=req.other_threads, dense=dense,
            sparse=sparse, limit=req.limit, score_threshold=req.threshold, kinds=req.kinds)
        return [hit_of(h.payload, h.score) for h in hits]

    def close(self) -> None:
        self._pool.shutdown(wait=False)
