"""Searching documents: hybrid search over chunks, each hit with its neighbours and its document.

A hit of a version that is no longer the searchable one (replaced a moment
ago, its points not yet gone) is left out, so a reader never sees two
versions of a document; when the replacement settled after the search ran,
the search runs again (the new version was searchable before it settled), so
a document being replaced is never missing from the results.
"""

from __future__ import annotations

import msgspec

from threadline.shared.documents.store import Document
from threadline.shared.threads import Store
from threadline.shared.vectors.rpc import ChunkSearchRequest, Hit, Scalar
from threadline.shared.vectors.search import MemorySearch

# Searches of a document replaced between a search and its reading. Each retry means a newer
# version settled meanwhile, so only a writer replacing the document faster than one search can
# keep it going; three were too few on a busy machine (a search answered without the document).
STALE_RETRIES = 20


class ChunkResult(msgspec.Struct, rename="camel", kw_only=True):
    """A found chunk: its text, the chunks around it (in order, itself included), its document."""

    namespace: str
    key: str
    chunk: int
    heading: str
    text: str
    context: str
    score: float
    document: Document


async def search_documents(store: Store, memory: MemorySearch, namespaces: list[str], text: str, *,
                           limit: int = 10, metadata: dict[str, Scalar] | None = None, before: int = 1,
                           after: int = 1, text_search: bool = True,
                           vector_search: bool = True, bill_to: str = "") -> list[ChunkResult]:
    """``bill_to``: the user whose usage embedding the query is ("": the app's own)."""
    request = ChunkSearchRequest(namespaces=tuple(namespaces), text=text, limit=limit, metadata=metadata or {},
                                 text_search=text_search, vector_search=vector_search, bill_to=bill_to)
    for _ in range(STALE_RETRIES):
        found, stale = await _resolve(store, await memory.search(request), before, after)
        if not stale:
            return found
    return found


async def _resolve(store: Store, hits: list[Hit], before: int, after: int) -> tuple[list[ChunkResult], bool]:
    """The hits as results, and whether any was of a version replaced after the search ran (its
    document settled a newer one meanwhile: searching again finds the newer one, which was
    searchable before it settled)."""
    docs = await store.documents.many([(h.namespace or "", h.doc_key or "") for h in hits])
    current: list[tuple[Hit, Document]] = []
    outdated: set[tuple[str, str]] = set()  # documents with hits only of a version replaced meanwhile
    for hit in hits:
        ref = (hit.namespace or "", hit.doc_key or "")
        doc = docs.get(ref)
        if doc is None:
            continue  # deleted
        if doc.ready_version != hit.doc_version:  # an older version on its way out (or a newer one not ready)
            if hit.doc_version < doc.ready_version:
                outdated.add(ref)
            continue
        current.append((hit, doc))
    stale = bool(outdated - {(doc.namespace, doc.key) for _, doc in current})
    windows = await store.documents.chunk_windows([(doc, hit.chunk - before, hit.chunk + after)
                                                   for hit, doc in current])
    out: list[ChunkResult] = []
    for (hit, doc), around in zip(current, windows, strict=True):
        own = around.get(hit.chunk)
        if own is None:  # replaced between reading the record and its chunks
            stale = True
            continue
        out.append(ChunkResult(namespace=doc.namespace, key=doc.key, chunk=hit.chunk, heading=own.heading,
                               text=own.text, context="\n".join(c.text for _, c in sorted(around.items())),
                               score=hit.score, document=doc))
    return out, stale
