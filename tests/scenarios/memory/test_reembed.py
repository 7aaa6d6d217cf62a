"""Changing the embedding model, as an operator does it: the index process restarted with another
EMBEDDING_MODEL searches a collection of its own, empty until `threadline reembed` queues everything
again; documents too, from the chunks of their searchable version (their content is gone once
indexed), a window of chunks at a time."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.scenarios.memory.test_memory import context, eventually, http, search, thread_with
from tests.support import procs
from tests.support.stack import Stack, run_stack
from threadline.shared.vectors.indexer import REEMBED_WINDOW

ENTRIES = 2 * REEMBED_WINDOW + 37  # paragraphs of the ledger, a chunk each: three windows
LAST = f"marker{ENTRIES - 3:04d}"  # a word of a chunk in the last window only


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with run_stack(tmp_path_factory.mktemp("reembed"), webs=1, workers=1) as s:
        yield s


def soon(check: Any) -> Any:
    """``check``'s answer once it has one: an index process starting on a loaded machine may take a while."""
    return eventually(check, timeout=60)


def ready(c: httpx.Client, key: str) -> dict[str, Any] | None:
    doc = c.get(f"/api/rag/user/documents/{key}").json()
    return doc if doc.get("status") == "ready" else None  # type: ignore[no-any-return]


def found(c: httpx.Client, query: str, **args: Any) -> list[dict[str, Any]] | None:
    """The hits of a document search, None while no index process answers (one is starting)."""
    r = c.post("/api/rag/search", json={"query": query, **args})
    return r.json()["results"] if r.status_code == 200 else None  # type: ignore[no-any-return]


def test_a_new_embedding_model_finds_documents_and_messages_once_reembedded(stack: Stack) -> None:
    hashing = stack.start_index("index-hashing")  # EMBEDDING_MODEL unset: the built-in hashing embedder
    ledger = "\n\n".join(f"Entry {n}: the keeper logged a schooner, {f'marker{n:04d}'}, passing at dusk."
                         for n in range(ENTRIES))
    with http(stack, "alice") as c:
        for key, content in (("ledger.txt", ledger), ("sedan.txt", "An affordable sedan for the family.")):
            r = c.post("/api/rag/user/documents", json={"key": key, "content": content, "chunkSize": 100,
                                                        "chunkOverlap": 0})
            assert r.status_code == 202, r.text
        docs = {key: soon(lambda key=key: ready(c, key)) for key in ("ledger.txt", "sedan.txt")}
        assert docs["ledger.txt"]["status"] == "ready" and docs["ledger.txt"]["chunks"] > 2 * REEMBED_WINDOW, docs
        tid, _ = thread_with(c, ["we drove the sedan to the coast", "the printer is out of toner"])
        assert soon(lambda: found(c, LAST, vectorSearch=False))[0]["key"] == "ledger.txt"
        assert soon(lambda: context(c, tid, "sedan", **search(True, False)))

        procs.stop(hashing)
        stack.start_index("index-concepts", EMBEDDING_MODEL="concepts")  # the scripted server's embeddings
        # searched in the new model's collection, which nothing has filled yet
        assert soon(lambda: found(c, LAST, vectorSearch=False) == []), "the new model found old vectors"
        assert found(c, "cheap automobile", textSearch=False) == []
        assert context(c, tid, "automobile", **search(False, True)) == []

        out = subprocess.run([sys.executable, "-m", "threadline.workers", "reembed"], cwd=procs.ROOT,
                             capture_output=True, text=True, env=procs.child_env(REDIS_URL=stack.redis_url),
                             timeout=60)
        assert out.returncode == 0, out.stderr
        assert " items and 2 documents for embedding" in out.stdout, out.stdout

        top = soon(lambda: found(c, LAST, vectorSearch=False))[0]
        assert top["key"] == "ledger.txt" and LAST in top["text"], top
        first = found(c, "marker0001", vectorSearch=False)
        assert first and first[0]["key"] == "ledger.txt" and "marker0001" in first[0]["text"], first
        by_meaning = found(c, "cheap automobile", textSearch=False)  # synonyms only the new model knows
        assert by_meaning and by_meaning[0]["key"] == "sedan.txt", by_meaning
        assert soon(lambda: context(c, tid, "automobile", **search(False, True)))[0] == \
            "we drove the sedan to the coast"
        after = {key: c.get(f"/api/rag/user/documents/{key}").json() for key in docs}
        assert all(after[k]["version"] == docs[k]["version"] and after[k]["status"] == "ready" for k in docs), after
