"""A thread shared by its owner with a writer and a reader, through two web processes, workers and
the scripted model: members' lists change live, the writer's prompt is theirs (and so is its reply
and its usage), the reader watches and cannot write, a removed member loses the thread at once."""

from __future__ import annotations

import httpx
import pytest

from tests.scenarios.replies.helpers import new_thread, open_tab, reply_of, token, watch_args
from tests.support.stack import Stack

pytestmark = pytest.mark.anyio

LIST = {"paginationOpts": {"numItems": 10}}


def listed(value: dict[str, object]) -> list[str]:
    return [t["threadId"] for t in value["page"]]  # type: ignore[attr-defined, index]


def http(base: str, user: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token(user)}"}, timeout=10)


async def test_owner_writer_and_reader_share_a_thread(llm: Stack) -> None:
    llm.script({"kind": "text", "chunks": ["hello ", "walt"]})
    olga = await open_tab(llm.webs[0], "olga", client_id="olga")
    walt = await open_tab(llm.webs[1], "walt", client_id="walt")
    rita = await open_tab(llm.webs[1], "rita", client_id="rita")
    tid = await new_thread(olga)
    await walt.subscribe("l", "threads.list", LIST)
    await rita.subscribe("l", "threads.list", LIST)
    await olga.subscribe("m", "messages.list", watch_args(tid))
    outsider = await walt.mutate("messages.send", {"threadId": tid, "prompt": "let me in", "agentName": "echo"})
    assert not outsider["ok"] and outsider["error"]["code"] == "not_found"

    added = await olga.mutate("threads.members.add", {"threadId": tid, "userId": "walt", "role": "writer"})
    assert added["ok"] and added["value"]["changed"] is True, added
    async with http(llm.webs[0], "olga") as owner, http(llm.webs[1], "rita") as reader, \
            http(llm.webs[1], "walt") as writer:
        r = await owner.post(f"/api/threads/{tid}/members", json={"userId": "rita", "role": "reader"})
        assert r.status_code == 200, r.text
        await walt.wait_result("l", lambda v: listed(v) == [tid])  # live, from another web process
        await rita.wait_result("l", lambda v: listed(v) == [tid])
        thread = (await reader.get(f"/api/threads/{tid}")).json()
        assert [(m["userId"], m["role"]) for m in thread["members"]] == [("walt", "writer"), ("rita", "reader")]
        assert (await writer.post(f"/api/threads/{tid}/members", json={"userId": "dan"})).status_code == 403

        # the writer sends; the prompt and its reply are the writer's, every member sees them
        await walt.subscribe("m", "messages.list", watch_args(tid))
        await rita.subscribe("m", "messages.list", watch_args(tid))
        sent = await walt.mutate("messages.send", {"threadId": tid, "prompt": "hi, it's walt", "agentName": "echo"})
        assert sent["ok"], sent
        for tab in (olga, walt, rita):
            frame = await tab.wait_result("m", lambda v: reply_of(v, 1, ("success",)) is not None)
            value = frame["value"]
            prompt = next(m for m in value["page"] if m["role"] == "user")
            assert (prompt["text"], prompt["userId"]) == ("hi, it's walt", "walt")
            assert (reply_of(value, 1)["text"], reply_of(value, 1)["userId"]) == ("hello walt", "walt")
        usage = {u: (await c.get("/api/usage")).json() for u, c in (("walt", writer), ("olga", owner))}
        assert usage["walt"]["totals"]["calls"] >= 1 and usage["olga"]["totals"]["calls"] == 0, usage

        # the reader watches, is present, and cannot write
        r = await reader.post(f"/api/threads/{tid}/messages", json={"prompt": "me too", "agentName": "echo"})
        assert r.status_code == 403 and r.json()["code"] == "forbidden"
        denied = await rita.mutate("snippets.add", {"threadId": tid, "kind": "note", "content": "x"})
        assert denied["error"]["code"] == "forbidden"
        assert (await reader.post(f"/api/threads/{tid}/presence", json={})).status_code == 200
        assert (await writer.patch(f"/api/threads/{tid}", json={"title": "walt's now"})).status_code == 403

        # out: the reader's list drops it live and their subscription to it ends
        assert (await owner.delete(f"/api/threads/{tid}/members/rita")).status_code == 200
        await rita.wait_result("l", lambda v: listed(v) == [])
        ended = await rita.wait(lambda f: f["type"] == "error" and f.get("id") == "m")
        assert ended["code"] == "not_found"
        assert (await reader.get(f"/api/threads/{tid}/messages")).status_code == 404
        # a member leaves by themself
        left = await walt.mutate("threads.members.remove", {"threadId": tid, "userId": "walt"})
        assert left["ok"] and left["value"]["removed"] is True
        await walt.wait_result("l", lambda v: listed(v) == [])
    for tab in (olga, walt, rita):
        await tab.close()
