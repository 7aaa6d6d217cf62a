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
from shared.memory.ops import indexable
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

    async def apply(self, ops: list[str]) -> int:
        """Apply a batch of ops (see shared.memory.ops); return how many documents were embedded."""
        last: dict[str, str] = {}
        threads: set[str] = set()
        for op in ops:
            kind, _, ref = op.partition(":")
            if kind == "t":
                threads.add(ref)
            else:
                last[ref] = kind
        for thread_id in threads:
            await self._q(self.index.delete_where, "threadId", thread_id)
        gone = [ref.split("/")[-1] for ref, kind in last.items() if kind in ("d", "x")]
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
            if kind == "u":
                m = await self.store.messages.get(ref)
                if not indexable(m):
                    return None
                return Doc(m.message_id, m.text, {
                    "ref": m.message_id, "kind": "message", "userId": m.user_id, "threadId": m.thread_id,
                    "messageId": m.message_id, "order": m.order, "stepOrder": m.step_order,
                    "createdAt": m.created_at})
            if kind == "s":
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

    async def search(self, req: dict[str, Any]) -> list[dict[str, Any]]:
        """Hybrid search for one request (see MemorySearch.search); payloads with fused scores."""
        text = req["text"]
        dense = (await self.embedder.embed([text]))[0] if req.get("vector", True) else None
        sparse = query_vector(text) if req.get("textSearch", True) else None
        dim = len(dense) if dense is not None else len((await self.embedder.embed(["x"]))[0])
        collection = self.index.ensure(self.embedder.model, dim)
        hits = await self._q(
            self.index.search, collection, user_id=req["userId"], thread_id=req["threadId"],
            before_order=req.get("beforeOrder"), other_threads=req.get("otherThreads", False), dense=dense,
            sparse=sparse, limit=req.get("limit", 10), score_threshold=req.get("threshold"),
            kinds=tuple(req.get("kinds", ["message"])))
        return [{**h.payload, "score": h.score} for h in hits]

    def close(self) -> None:
        self._pool.shutdown(wait=False)
