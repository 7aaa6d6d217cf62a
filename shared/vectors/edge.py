"""The embedded vector engine: Qdrant Edge, one shard per collection, in the index process.

Qdrant Edge is Qdrant's own segment engine in-process: dense and sparse
vectors (the sparse ones with the IDF modifier), payload indexes, filters,
prefetch + RRF fusion, and IDF computed over a filtered corpus (here: the
user's own points). Each shard lives in ``<root>/<collection>`` with its
write-ahead log; one process holds a shard at a time, so only the index
process opens them (other processes ask it over Redis, shared.vectors.search).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import qdrant_edge as qe

from threadline.shared.documents.store import SEP
from threadline.shared.vectors.vectors import (
    DENSE,
    SPARSE,
    Hit,
    Point,
    Scalar,
    collection_name,
    point_id,
    user_kind,
)

log = logging.getLogger(__name__)

RRF_K = 2  # as Qdrant's default RRF
# A keyword search whose filter leaves fewer points than this scores those points directly instead
# of walking the inverted index (whose postings hold every user's points): a user's own corpus is
# far smaller than the collection, and at 100,000 points of 50 users this halves the search.
SPARSE_FULL_SCAN = 50_000
_INDEXES: tuple[tuple[str, Any], ...] = (
    ("userKind", qe.KeywordIndexParams(is_tenant=True)),  # "<userId>/<kind>": what every search filters on
    ("threadId", qe.PayloadSchemaType.Keyword),
    ("order", qe.PayloadSchemaType.Integer),
    ("docRef", qe.PayloadSchemaType.Keyword), ("docId", qe.PayloadSchemaType.Keyword))  # a document's chunks


class EdgeIndex:
    """Collections, writes and hybrid search on Qdrant Edge shards under ``root``."""

    server = False

    def __init__(self, root: Path) -> None:
        self._root = root
        self._root.mkdir(parents=True, exist_ok=True)
        self._shards: dict[str, qe.EdgeShard] = {}
        for path in sorted(self._root.iterdir()):
            if path.is_dir() and path.name.startswith("tl_"):
                self._shards[path.name] = qe.EdgeShard.load(str(path))

    def ensure(self, model: str, dim: int) -> str:
        name = collection_name(model, dim)
        if name not in self._shards:
            config = qe.EdgeConfig(
                vectors={DENSE: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)},
                sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf,
                                                                   full_scan_threshold=SPARSE_FULL_SCAN)},
            )
            shard = qe.EdgeShard.create(str(self._root / name), config)
            for field, kind in _INDEXES:
                shard.update(qe.UpdateOperation.create_field_index(field, kind))
            self._shards[name] = shard
        return name

    def collections(self) -> list[str]:
        return sorted(self._shards)

    def upsert(self, collection: str, points: list[Point]) -> None:
        if not points:
            return
        latest = {p.ref: p for p in points}  # a batch may name a point twice: the last wins
        self._shards[collection].update(qe.UpdateOperation.upsert_points([
            qe.Point(point_id(p.ref), {DENSE: p.dense, SPARSE: qe.SparseVector(p.sparse[0], p.sparse[1])},
                     _stored(p.payload))
            for p in latest.values()
        ]))

    def delete_refs(self, refs: list[str]) -> None:
        ids: list[qe.PointId] = [point_id(r) for r in refs]
        for shard in self._shards.values():
            shard.update(qe.UpdateOperation.delete_points(ids))

    def delete_where(self, key: str, value: str) -> None:
        flt = qe.Filter(must=[qe.FieldCondition(key, match=qe.MatchValue(value))])
        for shard in self._shards.values():
            shard.update(qe.UpdateOperation.delete_points_by_filter(flt))

    def count(self, collection: str) -> int:
        return self._shards[collection].count(qe.CountRequest(exact=True))

    def flush(self) -> None:
        for shard in self._shards.values():
            shard.flush()

    def close(self) -> None:
        for shard in self._shards.values():
            shard.close()
        self._shards.clear()

    def search(
        self,
        collection: str,
        *,
        user_id: str,
        thread_id: str,
        before_order: int | None,
        other_threads: bool,
        dense: list[float] | None,
        sparse: tuple[list[int], list[float]] | None,
        limit: int,
        score_threshold: float | None = None,
        kinds: tuple[str, ...] = ("message",),
    ) -> list[Hit]:
        """Hybrid search ranked by fused (RRF) score; never another user's points. The keyword
        half weighs terms by how rare they are among this user's points, not everyone's."""
        shard = self._shards.get(collection)
        if shard is None:
            return []
        mine = _user_kinds(user_id, kinds)  # also the corpus term rarity is counted in
        flt = qe.Filter(must=[mine, *_scope(thread_id, before_order, other_threads)],
                        must_not=_excluded(thread_id, before_order, other_threads))
        return self._query(shard, flt, qe.Filter(must=[mine]), dense, sparse, limit, score_threshold)

    def search_chunks(self, collection: str, *, namespaces: list[str], metadata: dict[str, Scalar],
                      dense: list[float] | None, sparse: tuple[list[int], list[float]] | None,
                      limit: int, kind: str = "chunk") -> list[Hit]:
        """Chunks (or items) of these namespaces; term rarity counts within them."""
        shard = self._shards.get(collection)
        if shard is None:
            return []
        tenants = qe.FieldCondition("userKind", match=qe.MatchAny([user_kind(n, kind) for n in namespaces]))
        must: list[Any] = [tenants, *(qe.FieldCondition(f"metadata.{k}", match=qe.MatchValue(v))
                                      for k, v in metadata.items())]
        return self._query(shard, qe.Filter(must=must), qe.Filter(must=[tenants]), dense, sparse, limit, None)

    def _query(self, shard: qe.EdgeShard, flt: Any, corpus: Any, dense: list[float] | None,
               sparse: tuple[list[int], list[float]] | None, limit: int,
               score_threshold: float | None) -> list[Hit]:
        idf = qe.SearchParams(idf=qe.IdfParams(corpus=corpus))
        prefetch = []
        if dense is not None:
            prefetch.append(qe.Prefetch(limit * 3, query=qe.Query.Nearest(dense, using=DENSE), filter=flt,
                                        score_threshold=score_threshold))
        if sparse is not None and sparse[0]:
            prefetch.append(qe.Prefetch(limit * 3, query=qe.Query.Nearest(qe.SparseVector(*sparse), using=SPARSE),
                                        filter=flt, params=idf))
        if not prefetch:
            return []
        if len(prefetch) == 1:
            p = prefetch[0]
            request = qe.QueryRequest(limit, query=p.query, filter=flt, params=p.params,
                                      score_threshold=score_threshold if dense is not None else None,
                                      with_payload=True)
        else:
            fusion = qe.Fusion.Rrf(k=RRF_K)
            request = qe.QueryRequest(limit, query=fusion, prefetches=prefetch,  # type: ignore[arg-type]
                                      with_payload=True)  # (the stubs type Fusion, not its Rrf)
        return [Hit(payload=_found(p.payload or {}), score=p.score) for p in shard.query(request)]


def _user_kinds(user_id: str, kinds: tuple[str, ...]) -> Any:
    """The user's points of these kinds, through one indexed tenant key (one condition, not two)."""
    values = [user_kind(user_id, k) for k in kinds]
    return qe.FieldCondition("userKind", match=qe.MatchValue(values[0]) if len(values) == 1 else qe.MatchAny(values))


def _scope(thread_id: str, before_order: int | None, other_threads: bool) -> list[Any]:
    """What a point must match: this thread (before the prompt's order), unless other threads count too."""
    if other_threads:
        return []
    same = [qe.FieldCondition("threadId", match=qe.MatchValue(thread_id))]
    if before_order is not None:
        same.append(qe.FieldCondition("order", range=qe.RangeFloat(lt=float(before_order))))
    return same


def _excluded(thread_id: str, before_order: int | None, other_threads: bool) -> list[Any] | None:
    """With other threads counting: this thread's points from the prompt's order on are left out."""
    if not other_threads or before_order is None:
        return None
    return [qe.Filter(must=[qe.FieldCondition("threadId", match=qe.MatchValue(thread_id)),
                            qe.FieldCondition("order", range=qe.RangeFloat(gte=float(before_order)))])]


# What a point keeps: every payload field costs at each write (~7 us to convert, and storage), so
# the shard keeps what searches filter on and the ref; the rest is derived again for a hit.
_STORED = ("ref", "userKind", "threadId", "order", "docRef", "docId", "metadata")


def _stored(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: payload[k] for k in _STORED if k in payload}


def _found(payload: dict[str, Any]) -> dict[str, Any]:
    """The full payload of a stored point (see shared.vectors.indexer): owner and kind from
    ``userKind``, the message, snippet or chunk from ``ref``."""
    out = dict(payload)
    user, _, kind = str(payload.get("userKind", "")).rpartition("/")
    ref = str(payload.get("ref", ""))
    out["kind"] = kind
    if kind == "chunk":
        namespace, key, version, index = ref.split(SEP)
        out.update(namespace=namespace, docKey=key, docVersion=int(version), chunk=int(index))
    elif kind == "item":
        _, namespace, key = ref.split(SEP, 2)
        out.update(namespace=namespace, itemKey=key)
    else:
        out["userId"] = user
        out["messageId" if kind == "message" else "snippetId"] = ref
    return out
