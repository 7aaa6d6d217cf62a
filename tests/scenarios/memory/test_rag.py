"""Document RAG between real processes: documents added over HTTP and WebSocket, parsed, chunked
and embedded by the index process, their status live, searched with neighbours and metadata
filters; replacement, identical content, deletion, namespaces and bounds."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.scenarios.memory.test_memory import eventually
from tests.scenarios.replies.helpers import open_tab
from tests.support.pdf import pdf_with_pages
from tests.support.stack import SECRET, Stack, run_stack
from threadline.shared.auth import mint

GUIDE = """# Lighthouse handbook
Keepers log every passing ship in the ledger.

## Lamps
The lamp is trimmed at dusk and the lens polished with a chamois cloth.

## Storms
During a storm the foghorn sounds every thirty seconds until the fog lifts.
"""


@pytest.fixture(scope="module")
def rag(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with run_stack(tmp_path_factory.mktemp("rag"), webs=1, workers=1, index=True,
                   env={"RAG_MAX_BYTES": "200000"}) as stack:
        yield stack


def http(stack: Stack, user: str, **claims: Any) -> httpx.Client:
    token = mint(SECRET, user, **claims)
    return httpx.Client(base_url=stack.web, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def ready(c: httpx.Client, namespace: str, key: str, version: int | None = None) -> dict[str, Any]:
    def settled() -> dict[str, Any] | None:
        doc = c.get(f"/api/rag/{namespace}/documents/{key}").json()
        done = doc.get("status") in ("ready", "failed") and (version is None or doc["version"] == version)
        return doc if done else None
    return eventually(settled)  # type: ignore[no-any-return]


def search(c: httpx.Client, query: str, **args: Any) -> list[dict[str, Any]]:
    r = c.post("/api/rag/search", json={"query": query, **args})
    assert r.status_code == 200, r.text
    return r.json()["results"]  # type: ignore[no-any-return]


def test_markdown_is_chunked_by_heading_and_found_with_its_neighbours(rag: Stack) -> None:
    with http(rag, "alice") as c:
        r = c.post("/api/rag/user/documents", json={"key": "handbook.md", "content": GUIDE, "title": "Handbook",
                                                    "chunkSize": 100, "chunkOverlap": 0, "metadata": {"lang": "en"}})
        assert r.status_code == 202 and r.json()["status"] == "pending", r.text
        doc = ready(c, "user", "handbook.md")
        assert doc["status"] == "ready" and doc["chunks"] >= 3 and doc["namespace"] == "user:alice"
        (top, *_) = search(c, "foghorn storm", chunkContext={"before": 1, "after": 0})
        assert top["key"] == "handbook.md" and "foghorn" in top["text"]
        assert top["heading"] == "Lighthouse handbook > Storms" and top["document"]["title"] == "Handbook"
        assert "chamois" in top["context"]  # the chunk before it comes along
        assert search(c, "foghorn", metadata={"lang": "fr"}) == []
        assert search(c, "foghorn", metadata={"lang": "en"})[0]["key"] == "handbook.md"


def test_pdf_and_html_uploaded_as_they_are(rag: Stack) -> None:
    with http(rag, "alice") as c:
        pdf = pdf_with_pages("Quarterly tide report", "Spring tides reached record heights in March")
        r = c.post("/api/rag/user/documents?key=tides.pdf&title=Tides", content=pdf,
                   headers={"Content-Type": "application/pdf"})
        assert r.status_code == 202, r.text
        html = b"<!doctype html><html><body><h1>Ferry</h1><p>The ferry leaves at noon.</p><script>var secretword=1</script></body></html>"
        assert c.post("/api/rag/user/documents?key=ferry.html", content=html,
                      headers={"Content-Type": "text/html"}).status_code == 202
        assert ready(c, "user", "tides.pdf")["status"] == "ready"
        assert ready(c, "user", "ferry.html")["status"] == "ready"
        assert search(c, "record spring tides")[0]["key"] == "tides.pdf"
        assert search(c, "ferry noon")[0]["heading"] == "Ferry"
        assert all(r["key"] != "ferry.html" for r in search(c, "secretword", vectorSearch=False))


def test_replacing_swaps_versions_and_a_failed_replacement_keeps_the_last_good_one(rag: Stack) -> None:
    with http(rag, "alice") as c:
        c.post("/api/rag/user/documents", json={"key": "menu.txt", "content": "Today: pumpkin soup"})
        assert ready(c, "user", "menu.txt")["version"] == 1
        same = c.post("/api/rag/user/documents", json={"key": "menu.txt", "content": "Today: pumpkin soup"}).json()
        assert same["skipped"] is True and same["version"] == 1
        c.post("/api/rag/user/documents", json={"key": "menu.txt", "content": "Today: nettle risotto"})
        assert ready(c, "user", "menu.txt", 2)["status"] == "ready"
        found = search(c, "risotto")
        assert found[0]["key"] == "menu.txt" and [r["key"] for r in found].count("menu.txt") == 1
        assert all(r["key"] != "menu.txt" for r in search(c, "pumpkin", vectorSearch=False))
        broken = c.post("/api/rag/user/documents?key=menu.txt", content=b"%PDF-1.4\nnot a pdf at all",
                        headers={"Content-Type": "application/pdf"})
        assert broken.status_code == 202
        failed = ready(c, "user", "menu.txt", 3)
        assert failed["status"] == "failed" and "PDF" in failed["error"] and failed["readyVersion"] == 2
        assert search(c, "risotto")[0]["document"]["readyVersion"] == 2  # still searchable


def searched(counts: list[int], more: int) -> None:
    """Wait (at most 30 s) for ``more`` searches beyond those done so far."""
    target, deadline = len(counts) + more, time.monotonic() + 30
    while len(counts) < target and time.monotonic() < deadline:
        time.sleep(0.005)


def test_a_document_stays_searchable_while_it_is_replaced_again_and_again(rag: Stack) -> None:
    """Replace-by-key without a gap: searches running all along find the document in exactly one
    version every time, never none and never two."""
    import threading

    with http(rag, "hana") as c:
        c.post("/api/rag/user/documents", json={"key": "kiwi.txt", "content": "kiwi orchard, version 0"})
        ready(c, "user", "kiwi.txt")
        counts: list[int] = []
        done = threading.Event()

        backwards: list[tuple[int, int]] = []

        def searching() -> None:
            seen = 0
            with http(rag, "hana") as s:
                while not done.is_set():
                    found = [r for r in search(s, "kiwi orchard") if r["key"] == "kiwi.txt"]
                    counts.append(len(found))
                    for r in found:  # the searchable version never goes back
                        if r["document"]["readyVersion"] < seen:
                            backwards.append((seen, r["document"]["readyVersion"]))
                        seen = max(seen, r["document"]["readyVersion"])

        searchers = [threading.Thread(target=searching) for _ in range(3)]
        for t in searchers:
            t.start()
        try:
            for n in range(1, 25):
                c.post("/api/rag/user/documents", json={"key": "kiwi.txt", "content": f"kiwi orchard, version {n}"})
                searched(counts, 3)  # searches while each new version is indexed, however slow the machine
                if n % 2 == 0:
                    ready(c, "user", "kiwi.txt", n + 1)
            ready(c, "user", "kiwi.txt", 25)
        finally:
            done.set()
            for t in searchers:
                t.join()
        assert len(counts) >= 3 * 24 and set(counts) == {1}, counts
        assert backwards == []
        assert "version 24" in search(c, "kiwi orchard")[0]["text"]


def test_the_status_is_a_live_query(rag: Stack) -> None:
    async def run() -> None:
        tab = await open_tab(rag.web, "carol")
        try:
            await tab.subscribe("docs", "rag.documents", {"namespace": "user"})
            out = await tab.mutate("rag.add", {"key": "note.md", "content": "# Note\nremember the anchor chain"})
            assert out["ok"], out
            # pending, then ready (a live query's runs coalesce: with the index process quick enough, the
            # first result after the add may already be the ready one)
            await tab.wait_result("docs", lambda v: v["page"] and v["page"][0]["status"] in ("pending", "ready"))
            await tab.wait_result("docs", lambda v: v["page"] and v["page"][0]["status"] == "ready")
            await tab.subscribe("found", "rag.search", {"query": "anchor chain"})
            await tab.wait_result("found", lambda v: v["results"] and v["results"][0]["key"] == "note.md")
            gone = await tab.mutate("rag.delete", {"key": "note.md"})
            assert gone["ok"] and gone["value"] == {"deleted": True}
            await tab.wait_result("found", lambda v: v["results"] == [])
        finally:
            await tab.close()

    asyncio.run(run())


def test_namespaces_are_checked(rag: Stack) -> None:
    with http(rag, "alice") as alice, http(rag, "bob") as bob, http(rag, "dana", teams=("acme",)) as dana, \
            http(rag, "root", admin=True) as admin:
        alice.post("/api/rag/user/documents", json={"key": "diary.txt", "content": "my private harpoon diary"})
        ready(alice, "user", "diary.txt")
        assert search(bob, "harpoon") == []
        assert bob.post("/api/rag/search", json={"query": "harpoon", "namespaces": ["user:alice"]}).status_code == 403
        assert bob.get("/api/rag/user:alice/documents").status_code == 403
        assert bob.post("/api/rag/team:acme/documents", json={"key": "k", "content": "x"}).status_code == 403
        assert dana.post("/api/rag/team:acme/documents", json={"key": "plan", "content": "acme harbour plan"}
                         ).status_code == 202
        ready(dana, "team:acme", "plan")
        assert search(dana, "harbour plan", namespaces=["team:acme"])[0]["namespace"] == "team:acme"
        assert alice.post("/api/rag/global/documents", json={"key": "faq", "content": "x"}).status_code == 403
        assert admin.post("/api/rag/global/documents", json={"key": "faq", "content": "opening hours are nine to five"}
                          ).status_code == 202
        ready(admin, "global", "faq")
        assert search(bob, "opening hours", namespaces=["global"])[0]["key"] == "faq"
        assert bob.delete("/api/rag/global/documents/faq").status_code == 403


def test_bad_documents_get_clear_errors(rag: Stack) -> None:
    with http(rag, "erin") as c:
        big = c.post("/api/rag/user/documents?key=big.txt", content=b"a" * 300_000,
                     headers={"Content-Type": "text/plain"})
        assert big.status_code == 413 and big.json()["code"] == "too_large"
        png = c.post("/api/rag/user/documents?key=pic.png", content=b"\x89PNG\r\n\x1a\n\x00\x00\xff",
                     headers={"Content-Type": "image/png"})
        assert png.status_code == 415
        assert c.post("/api/rag/user/documents", json={"key": "e", "content": "   "}).status_code == 400
        assert c.post("/api/rag/user/documents", json={"key": "bad\x01key", "content": "x"}).status_code == 400
        assert c.post("/api/rag/user/documents", json={"key": "k", "content": "x", "chunkSize": 10}).status_code == 400
        assert c.get("/api/rag/user/documents/nothing").status_code == 404
        assert c.get("/api/rag/user/documents").json()["page"] == []


def test_the_python_api(rag: Stack) -> None:
    from threadline import Threadline

    async def run() -> None:
        async with Threadline(rag.settings()) as tl:
            doc = await tl.add_document("team:ops", "runbook.md", "# Restart\nrestart the beacon with the red lever",
                                        metadata={"team": "ops"})
            assert doc.status == "pending" and doc.version == 1
            async with asyncio.timeout(20):
                while (await tl.document("team:ops", "runbook.md")).status != "ready":
                    await asyncio.sleep(0.1)
            (hit, *_) = await tl.search_documents(["team:ops"], "red lever", metadata={"team": "ops"})
            assert hit.key == "runbook.md" and hit.heading == "Restart" and "beacon" in hit.text
            assert await tl.delete_document("team:ops", "runbook.md") is True

    asyncio.run(run())


# -- documents in agents' replies ---------------------------------------------------------------

CLOCK = """# Keeper's duties
## Clockwork
The keeper winds the lamp's clockwork every evening at six.

## Ledger
Every passing ship goes in the ledger with its flag.
"""


def reply(c: httpx.Client, tid: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        page = c.get(f"/api/threads/{tid}/messages").json()["page"]
        ended = [m for m in page if m["role"] == "assistant" and m["status"] != "pending"
                 and any(p["type"] == "text" for p in m["parts"])]
        return ended[0] if ended else None
    return eventually(done)  # type: ignore[no-any-return]


def sources(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in message["parts"] if p["type"] == "source"]


def documents_for_agents(stack: Stack) -> None:
    """fern's duties, and another user's (gus) document with the same words fern must never see."""
    with http(stack, "fern") as fern, http(stack, "gus") as gus:
        fern.post("/api/rag/user/documents", json={"key": "duties.md", "content": CLOCK, "title": "Duties",
                                                   "chunkSize": 100, "chunkOverlap": 0})
        gus.post("/api/rag/user/documents", json={"key": "gus.txt",
                                                  "content": "gus winds his clockwork at midnight, secretly"})
        ready(fern, "user", "duties.md")
        ready(gus, "user", "gus.txt")


def test_prompt_based_rag_puts_numbered_passages_in_the_context_and_sources_on_the_reply(rag: Stack) -> None:
    documents_for_agents(rag)
    with http(rag, "fern") as c:
        tid = c.post("/api/threads", json={"title": "duties"}).json()["threadId"]
        rag.reset_llm()
        rag.script({"kind": "text", "chunks": ["At six ", "in the evening [1]."]})
        question = "when is the clockwork wound?"
        assert c.post(f"/api/threads/{tid}/messages", json={"prompt": question, "agentName": "librarian"}
                      ).status_code == 201
        answer = reply(c, tid)
        (request,) = rag.llm_requests()
        system = [m["content"] for m in request["messages"] if m["role"] == "system"]
        passages = next(s for s in system if s.startswith("Passages from documents"))
        assert "[1] Duties (Keeper's duties > Clockwork)\nThe keeper winds the lamp's clockwork" in passages
        assert "midnight" not in passages  # another user's document never reaches the model
        assert request["messages"][-1] == {"role": "user", "content": question}
        assert answer["text"] == "At six in the evening [1]."
        first = sources(answer)[0]
        assert first["sourceId"] == "1" and first["namespace"] == "user:fern" and first["key"] == "duties.md"
        assert first["title"] == "Duties" and first["heading"] == "Keeper's duties > Clockwork"
        assert "clockwork every evening" in first["excerpt"]
        assert all(s["namespace"] == "user:fern" for s in sources(answer))
        # what the playground shows: the context an agent would get, passages and their sources included
        view = c.post(f"/api/threads/{tid}/context", json={"agentName": "librarian", "prompt": question}).json()
        shown = [m for m in view["messages"] if sources(m)]
        assert shown and sources(shown[0])[0]["key"] == "duties.md"


def test_tool_based_rag_searches_when_the_model_asks_and_keeps_what_it_found(rag: Stack) -> None:
    documents_for_agents(rag)
    with http(rag, "fern") as c:
        tid = c.post("/api/threads", json={"title": "research"}).json()["threadId"]
        rag.reset_llm()
        rag.script({"kind": "tools", "calls": [{"name": "search_documents",
                                                "arguments": '{"query": "ship ledger flag"}'}]},
                   {"kind": "text", "chunks": ["Ships go in the ledger [1]."]})
        c.post(f"/api/threads/{tid}/messages", json={"prompt": "what about ships?", "agentName": "researcher"}
               ).raise_for_status()
        answer = reply(c, tid)
        first, second = rag.llm_requests()
        assert any(t["function"]["name"] == "search_documents" for t in first["tools"])
        (result,) = [m for m in second["messages"] if m["role"] == "tool"]
        found = json.loads(result["content"])
        assert found[0]["source"] == "1" and found[0]["title"] == "Duties" and "ledger" in found[0]["text"]
        assert all("midnight" not in f["text"] for f in found)
        assert answer["text"] == "Ships go in the ledger [1]."
        cited = sources(answer)
        assert cited[0]["sourceId"] == "1" and cited[0]["heading"] == "Keeper's duties > Ledger"
        assert [s["sourceId"] for s in cited] == [str(i + 1) for i in range(len(cited))]


def test_agents_read_only_their_users_namespaces() -> None:
    from threadline.shared.agents.document_search import document_search
    from threadline.shared.documents.store import agent_namespaces
    from threadline.shared.errors import BadRequest
    from threadline.shared.rag.options import RagOptions

    assert agent_namespaces(["user", "global", "team:ops", "user:fern"], "fern") == ["user:fern", "global", "team:ops"]
    for bad in (["user:gus"], ["everyone"], ["team:"]):
        with pytest.raises(BadRequest):
            agent_namespaces(bad, "fern")
        with pytest.raises(BadRequest):
            RagOptions(namespaces=bad)
        with pytest.raises(BadRequest):
            document_search(bad)
