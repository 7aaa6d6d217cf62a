"""A Qdrant server through qdrant-client as a VectorStore (QDRANT_URL).

Any process may search it; any number of index processes may write. Only
this module imports qdrant-client, so the embedded mode never loads it.
"""

from __future__ import annotations

from qdrant_client import QdrantClient
from qdrant_client import models as qm

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


class VectorIndex:
    """A Qdrant server (or qdrant-client's local mode, which speaks the same API) as a VectorStore."""

    def __init__(self, client: QdrantClient, *, server: bool = True) -> None:
        self.client = client
        self.server = server
        self._known: set[str] = set()

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
        self._known.add(name)
        return name

    def collections(self) -> list[str]:
        return [c.name for c in self.client.get_collections().collections if c.name.startswith("tl_")]

    def upsert(self, collection: str, points: list[Point]) -> None:
        if not points:
            return
        self.client.upsert(collection, points=[
            qm.PointStruct(id=point_id(p.ref), payload=p.payload, vector={
                DENSE: p.dense, SPARSE: qm.SparseVector(indices=p.sparse[0], values=p.sparse[1])})
            for p in points
        ])

    def delete_refs(self, refs: list[str]) -> None:
        ids: list[qm.ExtendedPointId] = [point_id(r) for r in refs]
        for name in self.collections():
            self.client.delete(name, points_selector=qm.PointIdsList(points=ids))

    def delete_where(self, key: str, value: str) -> None:
        flt = qm.Filter(must=[qm.FieldCondition(key=key, match=qm.MatchValue(value=value))])
        for name in self.collections():
            self.client.delete(name, points_selector=qm.FilterSelector(filter=flt))

    def count(self, collection: str) -> int:
        return self.client.count(collection, exact=True).count

    def flush(self) -> None:
        return None  # a server persists on its own

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
        this = qm.FieldCondition(key="threadId", match=qm.MatchValue(value=thread_id))
        must: list[qm.Condition] = [qm.FieldCondition(key="userId", match=qm.MatchValue(value=user_id)),
                                    qm.FieldCondition(key="kind", match=qm.MatchAny(any=list(kinds)))]
        must_not: list[qm.Condition] = []
        later = qm.FieldCondition(key="order", range=qm.Range(gte=before_order)) if before_order is not None else None
        if not other_threads:  # this thread, before the prompt's order
            must += [this] + ([qm.FieldCondition(key="order", range=qm.Range(lt=before_order))]
                              if before_order is not None else [])
        elif later is not None:  # every thread, but this one only before the prompt's order
            must_not.append(qm.Filter(must=[this, later]))
        flt = qm.Filter(must=must, must_not=must_not or None)
        return self._query(collection, flt, dense, sparse, limit, score_threshold)

    def search_chunks(self, collection: str, *, namespaces: list[str], metadata: dict[str, Scalar],
                      dense: list[float] | None, sparse: tuple[list[int], list[float]] | None,
                      limit: int, kind: str = "chunk") -> list[Hit]:
        must: list[qm.Condition] = [
            qm.FieldCondition(key="userKind", match=qm.MatchAny(any=[user_kind(n, kind) for n in namespaces]))]
        must += [qm.FieldCondition(key=f"metadata.{k}", match=qm.MatchValue(value=v)) for k, v in metadata.items()]
        return self._query(collection, qm.Filter(must=must), dense, sparse, limit, None)

    def _query(self, collection: str, flt: qm.Filter, dense: list[float] | None,
               sparse: tuple[list[int], list[float]] | None, limit: int, score_threshold: float | None) -> list[Hit]:
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
