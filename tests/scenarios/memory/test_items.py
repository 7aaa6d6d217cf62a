"""The cross-thread store between real processes: items written over HTTP and WebSocket, listed live in
another web process, found by meaning once the index process has embedded them, guarded by namespace;
and an agent that remembers a fact in one thread and recalls it in another with its tools."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.scenarios.memory.test_memory import eventually
from tests.scenarios.replies.helpers import new_thread, open_tab, reply_of, watch_args
from tests.support.stack import SECRET, Stack, run_stack
from threadline.shared.auth import mint


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"EMBEDDING_MODEL": "concepts", "ITEMS_NAMESPACE_BYTES": "65536"}
    with run_stack(tmp_path_factory.mktemp("items"), webs=2, workers=1, env=env, index=True) as stack:
        yield stack


def http(stack: Stack, user: str, web: int = 0, **claims: Any) -> httpx.Client:
    return httpx.Client(base_url=stack.webs[web], headers={"Authorization": f"Bearer {mint(SECRET, user, **claims)}"},
                        timeout=10)


def found(c: httpx.Client, query: str, **args: Any) -> list[str]:
    r = c.post("/api/store/search", json={"query": query, **args})
    if r.status_code == 503 and "index process" in r.text:  # (still starting: it loads its model first)
        return []
    assert r.status_code == 200, r.text
    return [f"{hit['item']['namespace']}/{hit['item']['key']}" for hit in r.json()["results"]]


@pytest.mark.anyio
async def test_items_are_kept_listed_live_and_found_by_meaning(kept: Stack) -> None:
    tab = await open_tab(kept.webs[1], "kit-ana", "kit")
    await tab.subscribe("items", "store.list", {"prefix": "pets/"})
    await tab.wait_result("items", lambda v: v["page"] == [])
    with http(kept, "kit-ana") as ana:
        r = ana.put("/api/store/user/items/pets/main", json={"value": {"name": "Rex", "kind": "dog"}})
        assert r.status_code == 200 and r.json() == {"namespace": "user:kit-ana", "key": "pets/main", "version": 1}
        for key, value in [("travel/next", "a vacation in Lisbon"), ("car", "a blue sedan")]:
            assert ana.put(f"/api/store/user/items/{key}", json={"value": value}).status_code == 200
        r = ana.put("/api/store/user/items/notes/private", json={"value": "a dog named Spot", "index": False})
        assert r.status_code == 200
        frame = await tab.wait_result("items", lambda v: [i["key"] for i in v["page"]] == ["pets/main"])
        assert frame["value"]["page"][0]["value"] == {"name": "Rex", "kind": "dog"}

        # by meaning (the dense half only: no word of the query is in the item)
        assert eventually(lambda: found(ana, "puppy", textSearch=False)[:1] == ["user:kit-ana/pets/main"])
        assert eventually(lambda: found(ana, "automobile", textSearch=False)[:1] == ["user:kit-ana/car"])
        assert all("notes/private" not in k for k in found(ana, "dog named Spot", limit=10))  # not indexed

        stale = ana.put("/api/store/user/items/pets/main", json={"value": "x", "expectedVersion": 5})
        assert stale.status_code == 409 and stale.json()["code"] == "conflict"
        r = ana.put("/api/store/user/items/pets/main", json={"value": {"name": "Rex", "kind": "dog", "age": 3},
                                                              "expectedVersion": 1})
        assert r.status_code == 200 and r.json()["version"] == 2
        await tab.wait_result("items", lambda v: [i["version"] for i in v["page"]] == [2])
        assert ana.get("/api/store/user/items/pets/main").json()["value"]["age"] == 3
        assert [i["key"] for i in ana.get("/api/store/user/items").json()["page"]] == [
            "car", "notes/private", "pets/main", "travel/next"]
        assert ana.put("/api/store/user/items/big", json={"value": "x" * 17000}).status_code == 413

        assert ana.delete("/api/store/user/items/pets/main?expectedVersion=1").status_code == 409
        seen = len(tab.frames)
        r = ana.delete("/api/store/user/items/pets/main?expectedVersion=2")
        assert r.status_code == 200 and r.json() == {"deleted": True}
        await tab.wait(lambda f: f in tab.frames[seen:] and f["type"] == "result" and f["value"]["page"] == [])
        assert "user:kit-ana/pets/main" not in found(ana, "puppy", textSearch=False)
        assert ana.get("/api/store/user/items/pets/main").json() is None
    await tab.ws.close()


def test_namespaces_are_guarded_like_documents(kept: Stack) -> None:
    with http(kept, "kit-bo") as bo, http(kept, "kit-di", teams=("acme",)) as di, \
            http(kept, "kit-root", admin=True) as root:
        assert bo.get("/api/store/user:kit-ana/items").status_code == 403
        assert bo.put("/api/store/team:acme/items/x", json={"value": 1}).status_code == 403
        assert di.put("/api/store/team:acme/items/wiki/vpn", json={"value": "the vpn host is vpn.acme"}
                      ).status_code == 200
        assert bo.put("/api/store/app/items/motd", json={"value": "hello"}).status_code == 403
        r = root.put("/api/store/app/items/motd", json={"value": "hello"})
        assert r.status_code == 200 and r.json()["namespace"] == "global"
        assert bo.get("/api/store/global/items/motd").json()["value"] == "hello"  # everyone reads
        assert bo.get("/api/store/nowhere/items").status_code == 400
        assert eventually(lambda: "team:acme/wiki/vpn" in found(di, "vpn host", namespaces=["team:acme", "app"]))
        assert bo.post("/api/store/search", json={"query": "vpn", "namespaces": ["team:acme"]}).status_code == 403


@pytest.mark.anyio
async def test_an_agent_remembers_in_one_thread_and_recalls_in_another(kept: Stack) -> None:
    tab = await open_tab(kept.web, "kit-cy", "kit-cy")

    async def answer(prompt: str, tag: str) -> dict[str, Any]:
        tid = await new_thread(tab)
        await tab.subscribe(tag, "messages.list", watch_args(tid))
        sent = await tab.mutate("messages.send", {"threadId": tid, "prompt": prompt, "agentName": "keeper"})
        assert sent["ok"], sent

        def final(v: dict[str, Any]) -> Any:
            done = reply_of(v, 1, ("success",))
            return done if done is not None and done["text"] else None
        frame = await tab.wait_result(tag, lambda v: final(v) is not None, timeout=30)
        return final(frame["value"])  # type: ignore[no-any-return]

    fact = {"key": "pets/main", "value": {"name": "Rex", "kind": "dog"}, "text": "my dog is called Rex"}
    kept.script({"kind": "tools", "calls": [{"name": "remember", "arguments": json.dumps(fact)}]},
                {"kind": "text", "chunks": ["Noted."]})
    assert (await answer("My dog is called Rex", "a"))["text"] == "Noted."
    with http(kept, "kit-cy") as cy:
        item = cy.get("/api/store/user/items/pets/main").json()
        assert item["value"] == fact["value"] and item["updatedBy"] == "agent:keeper"
        eventually(lambda: found(cy, "puppy", textSearch=False)[:1] == ["user:kit-cy/pets/main"])

    kept.script({"kind": "tools", "calls": [{"name": "recall", "arguments": json.dumps({"query": "puppy"})}]},
                {"kind": "text", "chunks": ["Rex."]})
    assert (await answer("What is my puppy's name?", "b"))["text"] == "Rex."  # another thread
    tool_results = [m["content"] for m in kept.llm_requests()[-1]["messages"] if m["role"] == "tool"]
    assert len(tool_results) == 1 and json.loads(tool_results[0])[0]["value"] == fact["value"]

    other = await open_tab(kept.web, "kit-dee", "kit-dee")  # another user recalls nothing of cy's
    kept.script({"kind": "tools", "calls": [{"name": "recall", "arguments": json.dumps({"query": "puppy"})}]},
                {"kind": "text", "chunks": ["I don't know."]})
    tid = await new_thread(other)
    await other.subscribe("c", "messages.list", watch_args(tid))
    assert (await other.mutate("messages.send", {"threadId": tid, "prompt": "My pet?", "agentName": "keeper"}))["ok"]
    await other.wait_result("c", lambda v: (m := reply_of(v, 1, ("success",))) is not None and bool(m["text"]),
                            timeout=30)
    tool_results = [m["content"] for m in kept.llm_requests()[-1]["messages"] if m["role"] == "tool"]
    assert tool_results == ["[]"]
    await other.ws.close()
    await tab.ws.close()


def test_reembedding_queues_every_indexed_item_again(kept: Stack) -> None:
    import subprocess
    import sys

    from tests.support import procs
    from threadline.shared import keys
    from threadline.shared.indexing.ops import IndexOp, encode_op
    from threadline.shared.items.store import item_ref

    with http(kept, "kit-eve") as eve:
        assert eve.put("/api/store/user/items/garage", json={"value": "an old sedan"}).status_code == 200
        assert eventually(lambda: found(eve, "automobile", textSearch=False)[:1] == ["user:kit-eve/garage"])
        client = kept.store()  # drop its vector; the item stays in the store
        client.rpush(keys.vector_ops("user:kit-eve"), encode_op(IndexOp("forget_item", item_ref("user:kit-eve",
                                                                                                  "garage"))))
        client.close()
        assert eventually(lambda: "user:kit-eve/garage" not in found(eve, "automobile", textSearch=False))
        out = subprocess.run([sys.executable, "-m", "threadline.workers", "reembed"], cwd=procs.ROOT,
                             capture_output=True, text=True, env=procs.child_env(REDIS_URL=kept.redis_url), timeout=60)
        assert out.returncode == 0, out.stderr
        assert int(out.stdout.split(" snippets, ")[1].split(" items")[0]) >= 1
        assert eventually(lambda: found(eve, "automobile", textSearch=False)[:1] == ["user:kit-eve/garage"])
