"""Memory between real processes: web, the index process (Qdrant Edge, embedded), workers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.support.stack import SECRET, Stack, run_stack
from threadline.shared.auth import mint

FILLER = ["the meeting moved to tuesday", "remember to water the plants", "the printer is out of toner",
          "lunch was pasta again", "the train was late this morning", "send the invoice to finance"]


@pytest.fixture(scope="module")
def mem(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The index process on its embedded engine (the server path: tests/shared/vectors/test_stores.py)."""
    env = {"EMBEDDING_MODEL": "concepts"}
    with run_stack(tmp_path_factory.mktemp("mem"), webs=1, workers=1, env=env, index=True) as stack:
        yield stack


def http(stack: Stack, user: str) -> httpx.Client:
    return httpx.Client(base_url=stack.web, headers={"Authorization": f"Bearer {mint(SECRET, user)}"}, timeout=10)


def thread_with(c: httpx.Client, texts: list[str], title: str = "t") -> tuple[str, list[dict[str, Any]]]:
    tid = c.post("/api/threads", json={"title": title}).json()["threadId"]
    sent = [c.post(f"/api/threads/{tid}/messages", json={"prompt": t, "generate": False}).json() for t in texts]
    return tid, sent


def context(c: httpx.Client, tid: str, prompt: str, **options: Any) -> list[str]:
    body = {"prompt": prompt, "contextOptions": {"recentMessages": 0, **options}}
    r = c.post(f"/api/threads/{tid}/context", json=body)
    assert r.status_code == 200, r.text
    return [m["text"] for m in r.json()["messages"]]


def eventually(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition never held")
        time.sleep(0.2)


def search(text: bool, vector: bool, limit: int = 5, **rng: int) -> dict[str, Any]:
    return {"searchOptions": {"limit": limit, "textSearch": text, "vectorSearch": vector,
                              "messageRange": {"before": rng.get("before", 0), "after": rng.get("after", 0)}}}


def test_keyword_by_text_paraphrase_by_vector_and_hybrid_ranks_both(mem: Stack) -> None:
    with http(mem, "ann") as c:
        tid, _ = thread_with(c, [*FILLER, "my locker code is zq7791 at the gym", "looking for a cheap car to buy",
                                 *FILLER[:3]])
        wanted = "what was zq7791 about, and any affordable automobile ideas"
        found = eventually(lambda: (r := context(c, tid, wanted, **search(True, True, limit=2)))
                           and len(r) == 2 and r)
        assert set(found) == {"my locker code is zq7791 at the gym", "looking for a cheap car to buy"}
        text_only = context(c, tid, "affordable automobile zq7791", **search(True, False, limit=3))
        assert text_only[0] == "my locker code is zq7791 at the gym"
        assert "looking for a cheap car to buy" not in text_only  # no shared word: text search cannot see it
        vector_only = context(c, tid, "an affordable automobile", **search(False, True, limit=1))
        assert vector_only == ["looking for a cheap car to buy"]


def test_message_range_brings_the_neighbours_of_a_hit(mem: Stack) -> None:
    with http(mem, "ben") as c:
        tid, _ = thread_with(c, ["before the hit", "the rare word xylophonic appears here", "after the hit",
                                 *FILLER])
        got = eventually(lambda: context(c, tid, "xylophonic", **search(True, False, limit=1, before=1, after=1)))
        assert got == ["before the hit", "the rare word xylophonic appears here", "after the hit"]


def test_search_other_threads_never_returns_another_users_messages(mem: Stack) -> None:
    with http(mem, "cat") as cat, http(mem, "dan") as dan:
        dan_tid, _ = thread_with(dan, ["dan's secret is quokkafruit"])
        _older, _ = thread_with(cat, ["cat also likes quokkafruit"], "older")
        tid, _ = thread_with(cat, FILLER, "current")
        eventually(lambda: context(dan, dan_tid, "quokkafruit", **search(True, True)))
        got = eventually(lambda: context(cat, tid, "quokkafruit", searchOtherThreads=True, **search(True, True)))
        assert "cat also likes quokkafruit" in got and "dan's secret is quokkafruit" not in got
        alone = context(cat, tid, "quokkafruit", searchOtherThreads=False, **search(True, True))
        assert "cat also likes quokkafruit" not in alone


def index_hits(stack: Stack, user: str, thread_id: str, text: str) -> list[str]:
    """What the index process itself returns (ids), asked the way the product asks it."""
    import asyncio

    from threadline.shared.storage.client import connect
    from threadline.shared.vectors.rpc import SearchRequest
    from threadline.shared.vectors.search import RemoteSearch

    async def ask() -> list[str]:
        client = connect(stack.redis_url)
        try:
            hits = await RemoteSearch(client).search(SearchRequest(user_id=user, thread_id=thread_id, text=text,
                                                                   text_search=True, vector_search=False, limit=10))
        finally:
            await client.aclose()
        return [h.message_id or "" for h in hits]

    return asyncio.run(ask())


def test_deleted_messages_never_come_back_as_context(mem: Stack) -> None:
    import asyncio

    from tests.scenarios.replies.helpers import open_tab

    with http(mem, "eve") as c:
        tid, sent = thread_with(c, [*FILLER, "the vault password is glimmerpost", "glimmerpost spare key is in the safe"])
        victim, keeper = sent[-2]["messageId"], sent[-1]["messageId"]
        text_search = search(True, False, limit=5)
        eventually(lambda: len(context(c, tid, "glimmerpost", **text_search)) == 2)

        async def delete() -> None:
            tab = await open_tab(mem.web, "eve", "del")
            out = await tab.mutate("messages.delete", {"messageIds": [victim]})
            assert out["value"] == {"deleted": 1}
            await tab.close()

        asyncio.run(delete())
        assert context(c, tid, "glimmerpost", **text_search) == ["glimmerpost spare key is in the safe"]
        eventually(lambda: index_hits(mem, "eve", tid, "glimmerpost") == [keeper])
        c.delete(f"/api/threads/{tid}")
        eventually(lambda: index_hits(mem, "eve", tid, "glimmerpost") == [])


def test_snippets_reach_the_context_and_list_live(mem: Stack) -> None:
    import asyncio

    with http(mem, "fay") as c:
        tid, sent = thread_with(c, ["let us design the landing page"])
        edits = [("canvas-edit", "title", "changed the heading from 'Q3 plan' to 'Q3 roadmap'"),
                 ("canvas-edit", "hero image", "swapped the hero photo for the mountain shot"),
                 ("canvas-edit", "footer", "added the legal links to the footer"),
                 ("canvas-edit", "button", "made the signup button green"),
                 ("canvas-edit", "pricing", "moved the pricing table below the fold")]
        from tests.scenarios.replies.helpers import open_tab

        async def add_all() -> dict[str, Any]:
            tab = await open_tab(mem.web, "fay", "canvas")
            await tab.subscribe("sn", "snippets.list", {"threadId": tid})
            for kind, target, content in edits:
                out = await tab.mutate("snippets.add", {"threadId": tid, "kind": kind, "target": target,
                                                        "content": content, "messageId": sent[0]["messageId"]})
                assert out["ok"], out
            frame = await tab.wait_result("sn", lambda v: len(v["page"]) == 5)
            await tab.close()
            return frame

        frame = asyncio.run(add_all())
        assert frame["value"]["page"][0]["target"] == "pricing"  # newest first

        def title_snippet_in_context() -> bool:
            got = context(c, tid, "undo the change to the headline", snippets={"recent": 1, "search": True,
                                                                              "limit": 1})
            return any("Q3 roadmap" in t for t in got)

        assert eventually(title_snippet_in_context)
        recent_only = context(c, tid, "undo the change to the headline",
                              snippets={"recent": 2, "search": False, "limit": 0})
        assert not any("Q3 roadmap" in t for t in recent_only)
        assert any("pricing" in t for t in recent_only)


def test_a_generation_sees_search_results_in_its_context(mem: Stack) -> None:
    with http(mem, "gus") as c:
        tid, _ = thread_with(c, ["my favourite colour is vermilionish", *FILLER])
        eventually(lambda: context(c, tid, "vermilionish", **search(True, True)))
        mem.reset_llm()
        c.post(f"/api/threads/{tid}/messages", json={"prompt": "what is my favourite colour vermilionish?",
                                                     "agentName": "recall"}).raise_for_status()
        request = eventually(lambda: mem.llm_requests() and mem.llm_requests()[0])
        contents = [m.get("content") for m in request["messages"]]
        assert contents[0] == "Use what you remember."
        assert "my favourite colour is vermilionish" in contents
        assert contents[-1] == "what is my favourite colour vermilionish?"
        assert contents.index("my favourite colour is vermilionish") < len(contents) - 2


def test_reembed_queues_every_message_and_snippet_again(mem: Stack) -> None:
    import subprocess
    import sys

    from tests.support import procs
    from threadline.shared import keys
    from threadline.shared.indexing.ops import IndexOp, encode_op

    with http(mem, "hal") as c:
        tid, _ = thread_with(c, ["first note about walruses", "second note about walruses"])
        eventually(lambda: len(context(c, tid, "walruses", **search(True, False))) == 2)
        client = mem.store()
        client.rpush(keys.vector_ops(tid), encode_op(IndexOp("forget_thread", tid)))  # drop the thread's vectors; its messages stay in the store
        client.close()
        eventually(lambda: context(c, tid, "walruses", **search(True, False)) == [])
    out = subprocess.run([sys.executable, "-m", "threadline.workers", "reembed"], cwd=procs.ROOT, capture_output=True,
                         text=True, env=procs.child_env(REDIS_URL=mem.redis_url), timeout=60)
    assert out.returncode == 0, out.stderr
    queued = int(out.stdout.split("queued ")[1].split(" messages")[0])
    assert queued >= 2  # every stored message of every user, these two among them
    with http(mem, "hal") as c:
        got = eventually(lambda: context(c, tid, "walruses", **search(True, False)))
    assert set(got) == {"first note about walruses", "second note about walruses"}


def test_embedding_calls_count_in_their_owners_usage(mem: Stack) -> None:
    """EMBEDDING_MODEL at a provider: the tokens of each embedding call are the usage of whoever
    owns the texts (the scripted server counts a token per word)."""
    texts = ["the lighthouse keeper rows home", "gulls circle the harbour", "fog rolls in at dusk"]

    def embedded() -> int:
        usage = c.get("/api/usage").json()
        return int(usage["byKind"].get("embedding", {}).get("input", 0))

    with http(mem, "billy") as c:
        tid, _ = thread_with(c, texts)
        words = sum(len(t.split()) for t in texts)
        eventually(lambda: embedded() >= words)
        assert embedded() == words
        usage = c.get("/api/usage").json()
        assert usage["byModel"]["concepts"]["calls"] >= 1 and usage["byKind"]["embedding"]["output"] == 0
        context(c, tid, "harbour gulls tonight", **search(False, True))  # the query is embedded too
        assert embedded() == words + 3


def test_document_embeddings_count_for_the_user_who_added_or_searched(mem: Stack) -> None:
    """Documents of a team namespace: embedding their chunks is the usage of the user who added
    them, embedding a search is the searcher's; no namespace name is billed as if it were a user."""
    words = "the harbour pilot boards every ship at dawn"  # 8 tokens (a token per word)

    def embedded(c: httpx.Client) -> int:
        return int(c.get("/api/usage").json()["byKind"].get("embedding", {}).get("input", 0))

    member = httpx.Client(base_url=mem.web, timeout=10,
                          headers={"Authorization": f"Bearer {mint(SECRET, 'tess', teams=('pilots',))}"})
    with member as c:
        added = c.post("/api/rag/team:pilots/documents", json={"key": "pilots.txt", "content": words})
        assert added.status_code == 202, added.text
        eventually(lambda: c.get("/api/rag/team:pilots/documents/pilots.txt").json()["status"] == "ready")
        assert eventually(lambda: embedded(c)) == 8
        found = c.post("/api/rag/search", json={"query": "ship pilot", "namespaces": ["team:pilots"]})
        assert found.status_code == 200 and found.json()["results"], found.text
        assert embedded(c) == 8 + 2
    admin = httpx.Client(base_url=mem.web, timeout=10,
                         headers={"Authorization": f"Bearer {mint(SECRET, 'ops', admin=True)}"})
    with admin as a:
        assert a.get("/api/usage", params={"userId": "team:pilots"}).json()["totals"]["calls"] == 0
