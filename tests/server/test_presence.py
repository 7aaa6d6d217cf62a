"""Presence and typing across web processes: who views a thread and who types, live, ephemeral,
ending by itself."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import admin_headers, token_for
from tests.server.test_ws_mutations import make_thread
from tests.support.store import sync_client
from tests.support.wsutil import open_raw, send, until
from threadline.shared import keys

pytestmark = pytest.mark.anyio


def viewers(frame: dict[str, Any]) -> dict[str, tuple[int, bool]]:
    return {v["userId"]: (v["connections"], v["typing"]) for v in frame["value"]["viewers"]}


def presence_of(want: dict[str, tuple[int, bool]]) -> Any:
    return lambda f: f["type"] == "result" and f["id"] == "p" and viewers(f) == want


async def test_viewers_and_typing_are_live_across_processes_and_end_with_the_tab(web: str, web_b: str,
                                                                                 redis_url: str) -> None:
    a = await open_raw(web, client_id="pa")
    tid = await make_thread(a)
    await send(a, {"type": "subscribe", "id": "p", "query": "presence.list", "args": {"threadId": tid}})
    await until(a, presence_of({}))
    await send(a, {"type": "mutate", "id": "here", "name": "presence.set", "args": {"threadId": tid}})
    await until(a, presence_of({"alice": (1, False)}))
    b = await open_raw(web_b, client_id="pb")  # alice's second tab, on the other process
    await send(b, {"type": "mutate", "id": "t", "name": "presence.set", "args": {"threadId": tid, "typing": True}})
    frame = await until(a, presence_of({"alice": (2, True)}))
    assert 0 < frame["value"]["viewers"][0]["typingForMs"] <= 6000
    await send(b, {"type": "mutate", "id": "t2", "name": "presence.set", "args": {"threadId": tid, "typing": False}})
    await until(a, presence_of({"alice": (2, False)}))
    async with httpx.AsyncClient(base_url=web_b, timeout=10) as http:  # staff, over HTTP
        r = await http.post(f"/api/threads/{tid}/presence", json={"typing": True}, headers=admin_headers())
        assert r.status_code == 200 and r.json() == {"threadId": tid, "here": True}
        await until(a, presence_of({"alice": (2, False), "ops": (1, True)}))
        listed = (await http.get(f"/api/threads/{tid}/presence", headers=admin_headers())).json()
        assert {v["userId"] for v in listed["viewers"]} == {"alice", "ops"}
        bob = {"Authorization": f"Bearer {token_for('bob')}"}
        assert (await http.get(f"/api/threads/{tid}/presence", headers=bob)).status_code == 404
        assert (await http.post(f"/api/threads/{tid}/presence", json={}, headers=bob)).status_code == 404
        r = await http.post(f"/api/threads/{tid}/presence", json={"leave": True}, headers=admin_headers())
        assert r.json()["here"] is False
    await until(a, presence_of({"alice": (2, False)}))
    await b.close()  # the tab goes away: every other tab sees it at once
    await until(a, presence_of({"alice": (1, False)}))
    # a connection that went without a word (its process killed) ends when its time is up: the next
    # change anyone makes drops it
    store = sync_client(redis_url)
    store.zadd(keys.presence(tid), {"carol|gone": 1})
    store.zadd(keys.typing(tid), {"carol|gone": 1})
    await send(a, {"type": "mutate", "id": "again", "name": "presence.set", "args": {"threadId": tid, "typing": True}})
    await until(a, presence_of({"alice": (1, True)}))
    assert store.zscore(keys.presence(tid), "carol|gone") is None
    # ephemeral: nothing of it is a message, and deleting the thread takes it all
    await send(a, {"type": "subscribe", "id": "m", "query": "messages.list", "args": {"threadId": tid}})
    assert (await until(a, lambda f: f["type"] == "result" and f["id"] == "m"))["value"]["page"] == []
    await send(a, {"type": "mutate", "id": "del", "name": "threads.delete", "args": {"threadId": tid}})
    await until(a, lambda f: f["type"] == "mutated" and f["id"] == "del")
    assert not store.exists(keys.presence(tid), keys.typing(tid), keys.presence_version(tid))
    await a.close()
