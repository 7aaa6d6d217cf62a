"""The embedded-store mirror ranks exactly as qdrant-client's local mode does."""

from __future__ import annotations

import random
from pathlib import Path

from qdrant_client import QdrantClient

from shared.memory.embeddings import HashingEmbedder
from shared.memory.sparse import document_vector, query_vector
from shared.memory.vectors import Point, VectorIndex

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma".split()


def build(tmp: Path) -> tuple[VectorIndex, VectorIndex, str, HashingEmbedder]:
    rng = random.Random(3)
    emb = HashingEmbedder(64)
    plain = VectorIndex(QdrantClient(path=str(tmp)), server=False)
    name = plain.ensure(emb.model, emb.dim)
    points = []
    for i in range(400):
        text = " ".join(rng.choices(WORDS, k=rng.randint(3, 10)))
        payload = {"ref": f"m{i}", "userId": "u" if i % 5 else "other", "threadId": f"t{i % 3}",
                   "kind": "message" if i % 7 else "snippet", "order": i}
        points.append(Point(f"m{i}", emb.embed_one(text), document_vector(text), payload))
    plain.upsert(name, points)
    mirrored = VectorIndex(plain.client, server=False, mirror=True)
    mirrored.ensure(emb.model, emb.dim)  # loads the mirror from the store
    return plain, mirrored, name, emb


def ids(hits) -> list[str]:  # type: ignore[no-untyped-def]
    return [h.payload["ref"] for h in hits]


def assert_same_ranking(got, expected) -> None:  # type: ignore[no-untyped-def]
    """Same scores in the same order, and the same ids at every score (equal scores may come in
    any order; the tie group cut by the limit may differ)."""
    assert [round(h.score, 4) for h in got] == [round(h.score, 4) for h in expected]
    last = round(expected[-1].score, 4) if expected else None
    for score in {round(h.score, 4) for h in expected} - {last}:
        assert ({h.payload["ref"] for h in got if round(h.score, 4) == score}
                == {h.payload["ref"] for h in expected if round(h.score, 4) == score})


def test_mirror_matches_local_mode_for_dense_sparse_and_hybrid(tmp_path: Path) -> None:
    plain, mirrored, name, emb = build(tmp_path)
    for q in ("alpha beta", "theta iota kappa", "sigma"):
        for dense, sparse in ((emb.embed_one(q), None), (None, query_vector(q)),
                              (emb.embed_one(q), query_vector(q))):
            for other, before in ((False, None), (True, 200), (False, 300)):
                kw = dict(user_id="u", thread_id="t1", before_order=before, other_threads=other,
                          dense=dense, sparse=sparse, limit=8)
                expected, got = plain.search(name, **kw), mirrored.search(name, **kw)
                if dense is not None and sparse is not None:
                    # equal scores in one list (common in the sparse one) may come in another order
                    # from each engine, which moves fused ranks: the best hit and most of the top agree
                    assert ids(got)[0] == ids(expected)[0], (q, other, before)
                    assert len(set(ids(got)[:3]) & set(ids(expected)[:3])) >= 2, (q, other, before)
                else:
                    assert_same_ranking(got, expected)
                assert all(h.payload["userId"] == "u" for h in got)
    plain.client.close()


def test_mirror_follows_deletes(tmp_path: Path) -> None:
    plain, mirrored, name, emb = build(tmp_path)
    kw = dict(user_id="u", thread_id="t1", before_order=None, other_threads=True,
              dense=emb.embed_one("alpha"), sparse=query_vector("alpha"), limit=400)
    first = ids(mirrored.search(name, **kw))[0]
    mirrored.delete_refs([first])
    assert first not in ids(mirrored.search(name, **kw))
    mirrored.delete_where("threadId", "t0")
    assert all(h.payload["threadId"] != "t0" for h in mirrored.search(name, **kw))
    plain.client.close()


def test_loading_keeps_every_point_even_without_a_ref_in_the_payload(tmp_path: Path) -> None:
    emb = HashingEmbedder(16)
    plain = VectorIndex(QdrantClient(path=str(tmp_path)), server=False)
    name = plain.ensure(emb.model, emb.dim)
    plain.upsert(name, [Point(f"m{i}", emb.embed_one(f"w{i}"), document_vector(f"w{i}"),
                              {"userId": "u", "threadId": "t", "kind": "message", "order": i}) for i in range(50)])
    mirrored = VectorIndex(plain.client, server=False, mirror=True)
    mirrored.ensure(emb.model, emb.dim)
    assert len(mirrored._mirrors[name]) == 50
    plain.client.close()
