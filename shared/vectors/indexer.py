"""Turns ops into vectors and answers searches (the index process runs this).

In embedded mode this is the only place that opens the vector shards (Qdrant
Edge); calls into the vector store run on one thread.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from threadline.shared.clock import now_ms
from threadline.shared.documents.parsing import Chunk, chunk, sections, sniff
from threadline.shared.documents.store import (
    SEP,
    Document,
    doc_id,
    namespace_owner,
    op_ref,
    parse_ref,
)
from threadline.shared.errors import BadRequest, ChatError, NotFound
from threadline.shared.indexing.ops import IndexOp, indexable
from threadline.shared.items.store import item_ref, parse_item_ref
from threadline.shared.records import Message
from threadline.shared.threads import Store
from threadline.shared.usage.ledger import UsageEntry, UsageLedger
from threadline.shared.vectors.embeddings import Embedder
from threadline.shared.vectors.rpc import ChunkSearchRequest, Hit, SearchRequest, hit_of
from threadline.shared.vectors.sparse import document_vector, query_vector
from threadline.shared.vectors.vectors import Point, VectorStore, user_kind

log = logging.getLogger(__name__)

REEMBED_WINDOW = 100  # chunks of a document read and embedded at a time (about 100 kB of text)


@dataclass(slots=True)
class Doc:
    ref: str
    text: str
    payload: dict[str, Any]


class Indexer:
    def __init__(self, store: Store, embedder: Embedder, index: VectorStore,
                 ledger: UsageLedger | None = None) -> None:
        self.store = store
        self.embedder = embedder
        self.index = index
        self.ledger = ledger  # embedding calls a provider bills go in the usage ledger
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="qdrant")
        self.indexed = 0

    async def _q(self, fn: Any, *args: Any, **kw: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, lambda: fn(*args, **kw))

    async def apply(self, ops: list[IndexOp]) -> int:
        """Apply a batch of ops (see shared.indexing.ops); return how many documents were embedded."""
        last: dict[str, str] = {}
        threads: set[str] = set()
        users: set[str] = set()
        again: list[str] = []  # after the batch's other document ops: each checks what they left
        for op in ops:
            if op.kind == "forget_thread":
                threads.add(op.ref)
            elif op.kind == "forget_user":
                users.add(op.ref)
            elif op.kind == "reembed_document":
                again.append(op.ref)
            else:
                last[op.ref] = op.kind
        for thread_id in threads:
            await self._q(self.index.delete_where, "threadId", thread_id)
        for user_id in users:
            await self._q(self.index.delete_where, "userId", user_id)
        gone = [ref.split("/")[-1] for ref, kind in last.items() if kind in ("forget_message", "forget_snippet")]
        gone += [ref for ref, kind in last.items() if kind == "forget_item"]
        if gone:
            await self._q(self.index.delete_refs, gone)
        wanted = [ref for ref, kind in last.items() if kind == "embed_message"]
        docs = [_message_doc(m) for m in await self.store.messages.many(wanted) if indexable(m)]
        for ref, kind in last.items():
            if kind == "embed_snippet":
                doc = await self._snippet_doc(ref)
                if doc is not None:
                    docs.append(doc)
        docs += await self._item_docs([ref for ref, kind in last.items() if kind == "embed_item"])
        await self.upsert(docs)
        for ref, kind in last.items():
            if kind == "embed_document":
                await self._document(*parse_ref(ref))
            elif kind == "forget_document":
                await self._forget_document(*parse_ref(ref))
        for ref in dict.fromkeys(again):
            await self._reembed_document(*parse_ref(ref))
        return len(docs)

    async def _document(self, namespace: str, key: str, version: int) -> None:
        """Parse, chunk and embed one version of a document, then settle it (see shared.documents.store)."""
        documents = self.store.documents
        doc = await documents.find(namespace, key)
        content = await documents.content(namespace, key)
        if doc is None or doc.version != version or content is None:
            return  # deleted, or replaced by a newer version (its own op follows)
        try:
            parts = sections(content, sniff(content, doc.media_type, key))
            chunks = chunk(parts, doc.chunk_size, doc.chunk_overlap)
            if not chunks:
                raise BadRequest("the document has no text")
        except ChatError as exc:
            log.info("document %s/%s v%d failed: %s", namespace, key, version, exc.message)
            await documents.settle(doc, ready=False, error=exc.message)
            return
        await documents.put_chunks(namespace, key, version, [(c.heading, c.text) for c in chunks])
        await self.upsert([_chunk_doc(doc, version, c) for c in chunks])
        if await documents.settle(doc, ready=True, chunks=len(chunks)):
            if doc.ready_version and doc.ready_version != version:  # the old version's points go now
                await self._q(self.index.delete_where, "docRef", op_ref(namespace, key, doc.ready_version))
        else:  # replaced while it was being embedded: this version is not wanted
            await self._q(self.index.delete_where, "docRef", op_ref(namespace, key, version))
            await documents.drop_chunks(namespace, key, [version])

    async def _reembed_document(self, namespace: str, key: str, version: int) -> None:
        """Embed the stored chunks of a searchable version again (another embedding model), a window at
        a time; a version no longer searchable once they are in (replaced, deleted) loses them again."""
        documents = self.store.documents
        doc = await documents.find(namespace, key)
        if doc is None or doc.ready_version != version:
            return  # replaced or deleted since it was queued: the newer version's own op embeds it
        for first in range(0, doc.chunks, REEMBED_WINDOW):
            (window,) = await documents.chunk_windows([(doc, first, first + REEMBED_WINDOW - 1)])
            await self.upsert([_chunk_doc(doc, version, Chunk(i, c.heading, c.text)) for i, c in window.items()])
        after = await documents.find(namespace, key)
        if after is None or after.ready_version != version:
            await self._q(self.index.delete_where, "docRef", op_ref(namespace, key, version))

    async def _forget_document(self, namespace: str, key: str, version: int) -> None:
        await self._q(self.index.delete_where, "docId", doc_id(namespace, key))
        await self.store.documents.drop_chunks(namespace, key, range(1, version + 1))

    async def _snippet_doc(self, ref: str) -> Doc | None:
        try:
            s = await self.store.snippets.get(ref.split("/", 1)[1])
        except NotFound:
            return None  # deleted meanwhile: nothing to embed
        return Doc(s.snippet_id, s.text, {
            "ref": s.snippet_id, "kind": "snippet", "userId": s.user_id, "userKind": user_kind(s.user_id, "snippet"),
            "threadId": s.thread_id,
            "snippetId": s.snippet_id, "messageId": s.message_id, "order": 0, "stepOrder": 0})

    async def _item_docs(self, refs: list[str]) -> list[Doc]:
        """The items still there and indexed (one deleted or changed meanwhile has its own op after)."""
        found = await self.store.items.many([parse_item_ref(ref) for ref in refs])
        return [Doc(item_ref(i.namespace, i.key), i.search_text, {
            "ref": item_ref(i.namespace, i.key), "kind": "item", "userKind": user_kind(i.namespace, "item"),
            "namespace": i.namespace, "itemKey": i.key, "billTo": namespace_owner(i.namespace)})
            for i in found.values() if i.index]

    async def upsert(self, docs: list[Doc]) -> None:
        if not docs:
            return
        dense, tokens = await self.embedder.embed_counted([d.text for d in docs])
        await self._bill(tokens, [(str(d.payload.get("billTo") or d.payload.get("userId") or ""), len(d.text))
                                  for d in docs])
        collection = self.index.ensure(self.embedder.model, len(dense[0]))
        points = [Point(d.ref, v, document_vector(d.text), d.payload) for d, v in zip(docs, dense, strict=True)]
        await self._q(self.index.upsert, collection, points)
        self.indexed += len(points)

    async def search(self, req: SearchRequest | ChunkSearchRequest) -> list[Hit]:
        """Hybrid search for one request, best fused score first."""
        dense = None
        if req.vector_search:
            vectors, tokens = await self.embedder.embed_counted([req.text])
            dense = vectors[0]
            owner = req.user_id if isinstance(req, SearchRequest) else req.bill_to
            await self._bill(tokens, [(owner, 1)])
        sparse = query_vector(req.text) if req.text_search else None
        dim = len(dense) if dense is not None else len((await self.embedder.embed(["x"]))[0])
        collection = self.index.ensure(self.embedder.model, dim)
        if isinstance(req, ChunkSearchRequest):
            found = await self._q(self.index.search_chunks, collection, namespaces=list(req.namespaces),
                                  metadata=req.metadata, dense=dense, sparse=sparse, limit=req.limit,
                                  kind=req.kind)
            return [hit_of(h.payload, h.score) for h in found]
        hits = await self._q(
            self.index.search, collection, user_id=req.user_id, thread_id=req.thread_id,
            before_order=req.before_order, other_threads=req.other_threads, dense=dense,
            sparse=sparse, limit=req.limit, score_threshold=req.threshold, kinds=req.kinds)
        return [hit_of(h.payload, h.score) for h in hits]

    async def _bill(self, tokens: int, shares: list[tuple[str, int]]) -> None:
        """Record ``tokens`` of one embedding call, split among their owners by the length of
        their texts (largest remainders, so the parts add up to the whole). An owner "" is the
        app's own work (server code's documents and searches): no user's usage."""
        if not tokens or self.ledger is None:
            return
        weights: dict[str, int] = {}
        for owner, size in shares:
            weights[owner] = weights.get(owner, 0) + max(size, 1)
        total = sum(weights.values())
        exact = {owner: tokens * w / total for owner, w in weights.items()}
        parts = {owner: int(x) for owner, x in exact.items()}
        for owner in sorted(exact, key=lambda o: exact[o] - parts[o], reverse=True)[:tokens - sum(parts.values())]:
            parts[owner] += 1
        now = now_ms()
        for owner, n in parts.items():
            if not n or not owner:
                continue
            try:
                await self.ledger.record(UsageEntry(at=now, user_id=owner, provider=self.embedder.provider,
                                                    model=self.embedder.model, kind="embedding", input=n))
            except ChatError as exc:
                log.warning("embedding usage of %s not recorded: %s", owner, exc.message)

    async def flush(self) -> None:
        await self._q(self.index.flush)

    def close(self) -> None:
        self._pool.shutdown(wait=False)


def _message_doc(m: Message) -> Doc:
    return Doc(m.message_id, m.text, {
        "ref": m.message_id, "kind": "message", "userId": m.user_id, "userKind": user_kind(m.user_id, "message"),
        "threadId": m.thread_id,
        "messageId": m.message_id, "order": m.order, "stepOrder": m.step_order})


def _chunk_doc(doc: Document, version: int, c: Chunk) -> Doc:
    ref = op_ref(doc.namespace, doc.key, version)
    text = f"{doc.title}\n{c.heading}\n{c.text}" if c.heading or doc.title else c.text  # where it sits helps
    return Doc(f"{ref}{SEP}{c.index}", text, {
        "ref": f"{ref}{SEP}{c.index}", "kind": "chunk", "userKind": user_kind(doc.namespace, "chunk"),
        "namespace": doc.namespace, "docKey": doc.key, "docVersion": version, "docRef": ref,
        "docId": doc_id(doc.namespace, doc.key), "chunk": c.index, "metadata": doc.metadata,
        "billTo": doc.added_by})
