"""Searching documents: hybrid search over chunks, each hit with its neighbours and its document.

A hit of a version that is no longer the searchable one (replaced a moment
ago, its points not yet gone) is left out, so a reader never sees two
versions of a document.
"""

from __future__ import annotations

import msgspec

from shared.memory.rpc import ChunkSearchRequest, Scalar
from shared.memory.search import MemorySearch
from shared.store import Store
from shared.store.documents import Document


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
                           vector_search: bool = True) -> list[ChunkResult]:
    hits = await memory.search(ChunkSearchRequest(
        namespaces=tuple(namespaces), text=text, limit=limit, metadata=metadata or {},
        text_search=text_search, vector_search=vector_search))
    docs = await store.documents.many([(h.namespace or "", h.doc_key or "") for h in hits])
    current = [(hit, doc) for hit in hits
               if (doc := docs.get((hit.namespace or "", hit.doc_key or ""))) is not None
               and doc.ready_version == hit.doc_version]  # not deleted, nor an older version on its way out
    windows = await store.documents.chunk_windows([(doc, hit.chunk - before, hit.chunk + after)
                                                   for hit, doc in current])
    out: list[ChunkResult] = []
    for (hit, doc), around in zip(current, windows, strict=True):
        own = around.get(hit.chunk)
        if own is None:
            continue
        out.append(ChunkResult(namespace=doc.namespace, key=doc.key, chunk=hit.chunk, heading=own.heading,
                               text=own.text, context="\n".join(c.text for _, c in sorted(around.items())),
                               score=hit.score, document=doc))
    return out
