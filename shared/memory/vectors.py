"""The Qdrant side: one collection per (embedding model, dimension), dense + sparse vectors.

Synchronous qdrant-client calls: in embedded (local) mode only the index process
opens the store, from one thread; with a Qdrant server any process may.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from qdrant_client import QdrantClient
from qdrant_client import models as qm

DENSE, SPARSE = "dense", "text"
_NS = uuid.UUID("8f3a6c1e-2d4b-4c1a-9e7f-5b6a7c8d9e0f")


def point_id(ref: str) -> str:
    """A stable point id for a message or snippet id."""
    return str(uuid.uuid5(_NS, ref))


def collection_name(model: str, dim: int) -> str:
    return "tl_" + re.sub(r"[^a-zA-Z0-9_]+", "_", model) + f"_{dim}"


@dataclass(slots=True)
class Point:
    ref: str  # messageId or snippetId
    dense: list[float]
    sparse: tuple[list[int], list[float]]
    payload: dict[str, Any]


@dataclass(slots=True)
class Hit:
    payload: dict[str, Any]
    score: float


class VectorIndex:
    """Collections, writes and hybrid search; ``mirror=True`` (embedded store, single writer)
    answers searches from in-memory mirrors (see shared.memory.mirror)."""

    def __init__(self, client: QdrantClient, *, server: bool, mirror: bool = False) -> None:
        self.client = client
        self.server = server
        self._known: set[str] = set()
        self._mirrors: dict[str, Any] = {} if mirror else None  # type: ignore[assignment]

    def ensure(self, model: str, dim: int) -> str:
        name = collection_name(model, dim)
        if name in self._known:
            return name
        if not self.client.collection_exists(name):
            self.client.create_collection(
                name,
                vectors_config={DENSE: qm.VectorParams(size=dim, distance=qm.Distance.COSINE)},
                sparse_vectors_config={SPARSE: qm.SparseVectorParams(modifier=qm.Modifier.IDF)},
            )
            if self.server:  # payload indexes are ignored in local mode
                self.client.create_payload_index(name, "userId", qm.KeywordIndexParams(
                    type=qm.KeywordIndexType.KEYWORD, is_tenant=True))
                for field, kind in (("threadId", qm.PayloadSchemaType.KEYWORD),
                                    ("kind", qm.PayloadSchemaType.KEYWORD),
                                    ("order", qm.PayloadSchemaType.INTEGER)):
                    self.client.create_payload_index(name, field, kind)
        if self._mirrors is not None and name not in self._mirrors:
            from shared.memory.mirror import Mirror

            self._mirrors[name] = Mirror.load(self.client, name, dim)
        self._known.add(name)
        return name

    def collections(self) -> list[str]:
        return [c.name for c in self.client.get_collections().collections if c.name.startswith("tl_")]

    def upsert(self, collection: str, points: list[Point]) -> None:
        if not points:
            return
        if self._mirrors is not None:
            self._mirrors[collection].upsert(points)
        self.client.upsert(collection, points=[
            qm.PointStruct(id=point_id(p.ref), payload=p.payload, vector={
                DENSE: p.dense, SPARSE: qm.SparseVector(indices=p.sparse[0], values=p.sparse[1])})
            for p in points
        ])

    def delete_refs(self, refs: list[str]) -> None:
        ids: list[qm.ExtendedPointId] = [point_id(r) for r in refs]
        for mirror in (self._mirrors or {}).values():
            mirror.delete_refs(refs)
        for name in self.collections():
            self.client.delete(name, points_selector=qm.PointIdsList(points=ids))

    def delete_where(self, key: str, value: str) -> None:
        flt = qm.Filter(must=[qm.FieldCondition(key=key, match=qm.MatchValue(value=value))])
        for mirror in (self._mirrors or {}).values():
            mirror.delete_where(key, value)
        for name in self.collections():
            self.client.delete(name, points_selector=qm.FilterSelector(filter=flt))

    def count(self, collection: str) -> int:
        return self.client.count(collection, exact=True).count

    def scroll(self, collection: str, *, user_id: str | None = None, limit: int = 100,
               offset: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        """A page of stored points' payloads (for management and re-embedding)."""
        flt = None
        if user_id is not None:
            flt = qm.Filter(must=[qm.FieldCondition(key="userId", match=qm.MatchValue(value=user_id))])
        points, nxt = self.client.scroll(collection, scroll_filter=flt, limit=limit, offset=offset,
                                         with_payload=True)
        return [p.payload or {} for p in points], (str(nxt) if nxt is not None else None)

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
        """Hybrid search ranked by fused (RRF) score; never another user's points."""
        if self._mirrors is not None:
            return self._mirrors[collection].search(  # type: ignore[no-any-return]
                user_id=user_id, thread_id=thread_id, before_order=before_order, other_threads=other_threads,
                dense=dense, sparse=sparse, limit=limit, score_threshold=score_threshold, kinds=kinds)
        same = [qm.FieldCondition(key="threadId", match=qm.MatchValue(value=thread_id))]
        if before_order is not None:
            same.append(qm.FieldCondition(key="order", range=qm.Range(lt=before_order)))
        scope: list[qm.Condition] = [qm.Filter(must=same)]
        if other_threads:
            scope.append(qm.Filter(must_not=[qm.FieldCondition(key="threadId",
                                                               match=qm.MatchValue(value=thread_id))]))
        flt = qm.Filter(
            must=[qm.FieldCondition(key="userId", match=qm.MatchValue(value=user_id)),
                  qm.FieldCondition(key="kind", match=qm.MatchAny(any=list(kinds)))],
            should=scope,
        )
        prefetch = []
        if dense is not None:
            prefetch.append(qm.Prefetch(query=dense, using=DENSE, limit=limit * 3, filter=flt,
                                        score_threshold=score_threshold))
        if sparse is not None and sparse[0]:
            prefetch.append(qm.Prefetch(query=qm.SparseVector(indices=sparse[0], values=sparse[1]),
                                        using=SPARSE, limit=limit * 3, filter=flt))
        if not prefetch:
            return []
        if len(prefetch) == 1:
            p = prefetch[0]
            result = self.client.query_points(collection, query=p.query, using=p.using, limit=limit,
                                              query_filter=flt, score_threshold=p.score_threshold,
                                              with_payload=True)
        else:
            result = self.client.query_points(collection, prefetch=prefetch, query=qm.FusionQuery(
                fusion=qm.Fusion.RRF), limit=limit, with_payload=True)
        return [Hit(payload=p.payload or {}, score=p.score) for p in result.points]
