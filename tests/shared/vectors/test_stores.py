"""Both vector stores (Qdrant Edge embedded; a Qdrant server through qdrant-client, whose local
mode speaks the same API and stands in for a server here) keep to one contract: only the
user's points, this thread before the prompt or other threads too, the kinds asked for,
keyword (BM25) and meaning (dense) each find theirs and hybrid ranks both; deletes hold;
Edge data survive a restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from qdrant_client import QdrantClient

from threadline.shared.documents.store import op_ref
from threadline.shared.items.store import item_ref
from threadline.shared.vectors.edge import EdgeIndex
from threadline.shared.vectors.embeddings import HashingEmbedder
from threadline.shared.vectors.rpc import hit_of
from threadline.shared.vectors.server import VectorIndex
from threadline.shared.vectors.sparse import document_vector, query_vector
from threadline.shared.vectors.vectors import Point, VectorStore, user_kind

EMB = HashingEmbedder(64)
TEXTS = {
    "m1": ("u", "t1", 1, "message", "the lighthouse keeper counts the ships"),
    "m2": ("u", "t1", 2, "message", "we ate pasta at the harbour"),
    "m3": ("u", "t2", 1, "message", "lighthouses guide ships at night"),
    "m4": ("other", "t9", 1, "message", "the lighthouse of another user"),
    "m5": ("u", "t1", 3, "message", "running runners ran a marathon"),
    "s1": ("u", "t1", 0, "snippet", "canvas: a poem about the lighthouse"),
}


def fill(store: VectorStore) -> str:
    name = store.ensure(EMB.model, EMB.dim)
    store.upsert(name, [
        Point(ref, EMB.embed_one(text), document_vector(text),
              {"ref": ref, "kind": kind, "userId": user, "userKind": user_kind(user, kind), "threadId": tid,
               "order": order,
               "messageId": ref if kind == "message" else None, "snippetId": ref if kind == "snippet" else None})
        for ref, (user, tid, order, kind, text) in TEXTS.items()])
    return name


@pytest.fixture(params=["edge", "qdrant-client"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    if request.param == "edge":
        edge = EdgeIndex(tmp_path / "vectors")
        yield edge
        edge.close()
    else:
        client = QdrantClient(":memory:")
        yield VectorIndex(client, server=False)
        client.close()


def refs(store: VectorStore, name: str, text: str, *, dense: bool = True, sparse: bool = True,
         **kw: object) -> list[str]:
    args: dict[str, object] = dict(user_id="u", thread_id="t1", before_order=None, other_threads=False, limit=10)
    args.update(kw)
    hits = store.search(name, dense=EMB.embed_one(text) if dense else None,
                        sparse=query_vector(text) if sparse else None, **args)  # type: ignore[arg-type]
    return [h.payload["ref"] for h in hits]


def test_scope_user_thread_order_and_kind(store: VectorStore) -> None:
    name = fill(store)
    assert refs(store, name, "lighthouse", dense=False) == ["m1"]
    assert set(refs(store, name, "lighthouse", dense=False, other_threads=True)) == {"m1", "m3"}
    assert refs(store, name, "lighthouse", dense=False, before_order=1) == []
    assert refs(store, name, "lighthouse", dense=False, kinds=("snippet",)) == ["s1"]
    assert "m4" not in refs(store, name, "lighthouse", other_threads=True)  # never another user's


def test_keywords_are_stemmed_and_stopwords_dropped(store: VectorStore) -> None:
    name = fill(store)
    assert refs(store, name, "run", dense=False) == ["m5"]  # running, runners, ran: one stem at least
    assert refs(store, name, "the", dense=False) == []


def test_hybrid_finds_by_either_half_and_deletes_hold(store: VectorStore) -> None:
    name = fill(store)
    both = refs(store, name, "lighthouse ships", other_threads=True)
    assert both[:2] and set(both[:2]) <= {"m1", "m3"}
    store.delete_refs(["m1"])
    assert "m1" not in refs(store, name, "lighthouse ships", other_threads=True)
    store.delete_where("threadId", "t2")
    assert refs(store, name, "lighthouse", dense=False, other_threads=True) == []
    assert store.count(name) == 4


def test_edge_data_survive_a_restart(tmp_path: Path) -> None:
    first = EdgeIndex(tmp_path / "vectors")
    name = fill(first)
    first.flush()
    first.close()
    again = EdgeIndex(tmp_path / "vectors")
    assert again.collections() == [name] and again.count(name) == len(TEXTS)
    assert refs(again, name, "lighthouse", dense=False) == ["m1"]
    again.close()


def test_keyword_rarity_counts_within_the_users_own_points(tmp_path: Path) -> None:
    """Per-user IDF (Qdrant Edge): "garden" is everywhere in another user's points but rare in
    this user's, "coffee" the reverse; so for this user a garden match outranks a coffee match,
    where IDF over the whole collection would rank them the other way."""
    edge = EdgeIndex(tmp_path / "vectors")
    name = edge.ensure(EMB.model, EMB.dim)
    texts = {"c": ("u", "coffee note"), "g": ("u", "garden note")}
    texts.update({f"uc{i}": ("u", f"coffee cup {i}") for i in range(6)})
    texts.update({f"og{i}": ("other", f"garden bed {i}") for i in range(30)})
    edge.upsert(name, [
        Point(ref, EMB.embed_one(text), document_vector(text),
              {"ref": ref, "userKind": user_kind(user, "message"), "threadId": "t", "order": i})
        for i, (ref, (user, text)) in enumerate(texts.items())])
    hits = edge.search(name, user_id="u", thread_id="t", before_order=None, other_threads=True, dense=None,
                       sparse=query_vector("coffee garden note"), limit=10)
    score = {h.payload["ref"]: h.score for h in hits}
    assert max(score, key=score.__getitem__) == "g" and score["g"] > score["c"]
    mine_other = edge.search(name, user_id="other", thread_id="t", before_order=None, other_threads=True,
                             dense=None, sparse=query_vector("coffee garden"), limit=3)
    assert all(h.payload["userId"] == "other" for h in mine_other)
    edge.close()


def test_items_and_chunks_of_a_namespace_are_searched_apart(store: VectorStore) -> None:
    name = store.ensure(EMB.model, EMB.dim)
    texts = {("item", "team:a"): "the lighthouse opens at nine", ("chunk", "team:a"): "lighthouse handbook page",
             ("item", "team:b"): "another team's lighthouse"}
    refs = {(kind, ns): item_ref(ns, "hours") if kind == "item" else op_ref(ns, "handbook", 1) + "\x1f0"
            for kind, ns in texts}
    store.upsert(name, [Point(refs[kind, ns], EMB.embed_one(text), document_vector(text),
                              {"ref": refs[kind, ns], "kind": kind, "userKind": user_kind(ns, kind),
                               "namespace": ns, "metadata": {}})
                        for (kind, ns), text in texts.items()])

    def found(kind: str, namespaces: list[str]) -> list[tuple[str, str]]:
        hits = store.search_chunks(name, namespaces=namespaces, metadata={}, dense=EMB.embed_one("lighthouse"),
                                   sparse=query_vector("lighthouse"), limit=10, kind=kind)
        return sorted((hit_of(h.payload, h.score).namespace or "", h.payload["ref"]) for h in hits)

    assert found("item", ["team:a"]) == [("team:a", refs["item", "team:a"])]
    assert found("item", ["team:a", "team:b"]) == [("team:a", refs["item", "team:a"]),
                                                   ("team:b", refs["item", "team:b"])]
    assert found("chunk", ["team:a"]) == [("team:a", refs["chunk", "team:a"])]
