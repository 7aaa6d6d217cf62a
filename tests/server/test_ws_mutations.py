"""The three mutation guarantees, between real uvicorn processes, Redis and clients."""

from __future__ import annotations

import pytest

from tests.support.wsutil import no_frame, open_raw, recv, send, until

pytestmark = pytest.mark.anyio


async def make_thread(ws, title: str = "t") -> str:  # type: ignore[no-untyped-def]
    await send(ws, {"type": "mutate", "id": f"create-{title}", "name": "threads.create", "args": {"title": title}})
    frame = await until(ws, lambda f: f["type"] == "mutated")
    assert frame["ok"], frame
    return frame["value"]["threadId"]


async def test_read_your_writes_result_arrives_before_mutated(web: str) -> None:
    ws = await open_raw(web)
    tid = await make_thread(ws)
    await send(ws, {"type": "subscribe", "id": "msgs", "query": "messages.list", "args": {"threadId": tid}})
    first = await recv(ws)
    assert first["type"] == "result" and first["value"]["page"] == []
    for i in range(5):
        await send(ws, {"type": "mutate", "id": f"send-{i}", "name": "messages.send",
                        "args": {"threadId": tid, "prompt": f"hello {i}", "generate": False}})
        result = await recv(ws)
        assert result["type"] == "result", result
        assert result["value"]["page"][0]["text"] == f"hello {i}"
        mutated = await recv(ws)
        assert (mutated["type"], mutated["id"], mutated["ok"]) == ("mutated", f"send-{i}", True)
        assert mutated["version"] == result["version"]
    await ws.close()


async def test_resent_mutation_after_reconnect_on_another_process_runs_once(web: str, web_b: str) -> None:
    ws = await open_raw(web, client_id="tab-1")
    tid = await make_thread(ws)
    args = {"threadId": tid, "prompt": "only once", "generate": False}
    await send(ws, {"type": "mutate", "id": "req-42", "name": "messages.send", "args": args})
    first = await until(ws, lambda f: f["type"] == "mutated")
    await ws.close()
    other = await open_raw(web_b, client_id="tab-1")
    await send(other, {"type": "mutate", "id": "req-42", "name": "messages.send", "args": args})
    again = await until(other, lambda f: f["type"] == "mutated")
    assert again == first
    await send(other, {"type": "subscribe", "id": "m", "query": "messages.list", "args": {"threadId": tid}})
    page = (await until(other, lambda f: f["type"] == "result"))["value"]["page"]
    assert [m["text"] for m in page] == ["only once"]
    # the same request id from another client id is another request
    third = await open_raw(web_b, client_id="tab-2")
    await send(third, {"type": "mutate", "id": "req-42", "name": "messages.send", "args": args})
    assert (await until(third, lambda f: f["type"] == "mutated"))["value"]["order"] == 2
    await other.close()
    await third.close()


async def test_outcomes_are_kept_at_least_24_hours(web: str, redis_url: str) -> None:
    import redis

    ws = await open_raw(web, client_id="ttl-tab")
    await make_thread(ws)
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match="tl:*:idem:*"))
    assert keys and all(client.ttl(k) >= 24 * 3600 for k in keys)
    client.close()
    await ws.close()


async def test_a_failed_mutation_outcome_is_replayed_too(web: str) -> None:
    ws = await open_raw(web, client_id="tab-x")
    frame = {"type": "mutate", "id": "bad-1", "name": "messages.send",
             "args": {"threadId": "tnope", "prompt": "x", "generate": False}}
    await send(ws, frame)
    first = await until(ws, lambda f: f["type"] == "mutated")
    assert first["ok"] is False and first["error"]["code"] == "not_found"
    await send(ws, frame)
    assert await until(ws, lambda f: f["type"] == "mutated") == first
    await ws.close()


async def test_every_other_subscriber_on_any_process_gets_the_new_result(web: str, web_b: str) -> None:
    writer = await open_raw(web, client_id="writer")
    tid = await make_thread(writer)
    watchers = [await open_raw(base, client_id=f"w{i}") for i, base in enumerate([web, web_b, web_b])]
    for w in watchers:
        await send(w, {"type": "subscribe", "id": "s", "query": "messages.list", "args": {"threadId": tid}})
        assert (await recv(w))["value"]["page"] == []
    await send(writer, {"type": "mutate", "id": "x", "name": "messages.send",
                        "args": {"threadId": tid, "prompt": "broadcast", "generate": False}})
    for w in watchers:
        frame = await until(w, lambda f: f["type"] == "result")
        assert [m["text"] for m in frame["value"]["page"]] == ["broadcast"]
        await w.close()
    await writer.close()


async def test_thread_list_updates_live_across_processes(web: str, web_b: str) -> None:
    a = await open_raw(web, client_id="a")
    b = await open_raw(web_b, client_id="b")
    await send(b, {"type": "subscribe", "id": "threads", "query": "threads.list", "args": {}})
    assert (await recv(b))["value"]["page"] == []
    tid = await make_thread(a, "shared")
    assert [t["title"] for t in (await until(b, lambda f: f["type"] == "result"))["value"]["page"]] == ["shared"]
    await send(a, {"type": "mutate", "id": "rename", "name": "threads.update",
                   "args": {"threadId": tid, "title": "renamed"}})
    frame = await until(b, lambda f: f["type"] == "result")
    assert frame["value"]["page"][0]["title"] == "renamed"
    await a.close()
    await b.close()


async def test_versions_never_decrease_and_unsubscribe_stops_frames(web: str) -> None:
    ws = await open_raw(web)
    tid = await make_thread(ws)
    await send(ws, {"type": "subscribe", "id": "s", "query": "messages.list", "args": {"threadId": tid}})
    versions = [(await recv(ws))["version"]]
    for i in range(10):
        await send(ws, {"type": "mutate", "id": f"m{i}", "name": "messages.send",
                        "args": {"threadId": tid, "prompt": str(i), "generate": False}})
        while (frame := await recv(ws))["type"] != "mutated":
            versions.append(frame["version"])
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    await send(ws, {"type": "unsubscribe", "id": "s"})
    await send(ws, {"type": "mutate", "id": "after", "name": "messages.send",
                    "args": {"threadId": tid, "prompt": "after", "generate": False}})
    assert (await recv(ws))["type"] == "mutated"
    await no_frame(ws)
    await ws.close()


async def test_another_users_thread_is_not_found_for_queries_and_mutations(web: str) -> None:
    alice = await open_raw(web, "alice")
    tid = await make_thread(alice)
    bob = await open_raw(web, "bob")
    await send(bob, {"type": "subscribe", "id": "peek", "query": "messages.list", "args": {"threadId": tid}})
    err = await recv(bob)
    assert (err["type"], err["id"], err["code"]) == ("error", "peek", "not_found")
    await send(bob, {"type": "mutate", "id": "w", "name": "messages.send",
                     "args": {"threadId": tid, "prompt": "x", "generate": False}})
    assert (await recv(bob))["error"]["code"] == "not_found"
    await send(bob, {"type": "mutate", "id": "d", "name": "threads.delete", "args": {"threadId": tid}})
    assert (await recv(bob))["error"]["code"] == "not_found"
    await alice.close()
    await bob.close()


@pytest.mark.parametrize("streams", [False, True])
async def test_deleting_a_thread_ends_its_subscriptions_with_not_found(web: str, streams: bool) -> None:
    ws = await open_raw(web)
    tid = await make_thread(ws)
    await send(ws, {"type": "subscribe", "id": "s", "query": "messages.list",
                    "args": {"threadId": tid, "streams": streams}})
    await recv(ws)
    await send(ws, {"type": "subscribe", "id": "t", "query": "threads.get", "args": {"threadId": tid}})
    await recv(ws)
    await send(ws, {"type": "mutate", "id": "del", "name": "threads.delete", "args": {"threadId": tid}})
    frames = [await recv(ws), await recv(ws), await recv(ws)]
    assert sorted(f["type"] for f in frames) == ["error", "error", "mutated"]
    assert {(f["id"], f["code"]) for f in frames if f["type"] == "error"} == {("s", "not_found"), ("t", "not_found")}
    assert frames[-1]["type"] == "mutated" and frames[-1]["ok"]
    await no_frame(ws)
    await ws.close()


async def test_request_ids_of_different_users_and_transports_never_collide(web: str) -> None:
    import httpx

    from tests.conftest import token_for

    async def ws_create(user: str, client_id: str, rid: str) -> str:
        ws = await open_raw(web, user, client_id)
        await send(ws, {"type": "mutate", "id": rid, "name": "threads.create", "args": {"title": user}})
        frame = await until(ws, lambda f: f["type"] == "mutated")
        await ws.close()
        assert frame["ok"], frame
        return frame["value"]["threadId"]

    def http_create(user: str, key: str) -> str:
        r = httpx.post(f"{web}/api/threads", json={"title": user},
                       headers={"Authorization": f"Bearer {token_for(user)}", "Idempotency-Key": key})
        assert r.status_code == 201, r.text
        return r.json()["threadId"]

    def owner(user: str, thread_id: str) -> int:
        return httpx.get(f"{web}/api/threads/{thread_id}",
                         headers={"Authorization": f"Bearer {token_for(user)}"}).status_code

    # a user named "http" over WebSocket, with another user's name as clientId, vs that user over HTTP
    ws_thread = await ws_create("http", "alice", "K1")
    http_thread = http_create("alice", "K1")
    assert ws_thread != http_thread and owner("alice", http_thread) == 200
    # "alice" with clientId "x:tab" vs "alice:x" with clientId "tab"
    a = await ws_create("alice", "x:tab", "K2")
    b = await ws_create("alice:x", "tab", "K2")
    assert a != b and owner("alice:x", b) == 200 and owner("alice", b) == 404


async def test_regenerate_counts_against_the_send_rate_limit(web: str) -> None:
    ws = await open_raw(web, client_id="regen-tab")
    tid = await make_thread(ws, "regen")
    await send(ws, {"type": "mutate", "id": "first", "name": "messages.send",
                    "args": {"threadId": tid, "prompt": "answer me", "generate": False}})
    mid = (await until(ws, lambda f: f.get("id") == "first"))["value"]["messageId"]
    codes = []
    for i in range(30):  # the default bucket holds 20
        await send(ws, {"type": "mutate", "id": f"regen-{i}", "name": "messages.regenerate",
                        "args": {"messageId": mid, "attempt": str(i)}})
        frame = await until(ws, lambda f, i=i: f.get("id") == f"regen-{i}")
        codes.append("ok" if frame["ok"] else frame["error"]["code"])
    assert "rate_limited" in codes and codes[0] == "ok"
    await ws.close()


async def test_message_metadata_reaches_every_subscriber_on_send_and_update(web: str, web_b: str) -> None:
    """Metadata sent with a message, then replaced from another process (WebSocket and HTTP): the
    other tab's live page shows each; too large is bad_request and changes nothing."""
    import httpx

    from tests.conftest import token_for

    a = await open_raw(web, client_id="meta-a")
    tid = await make_thread(a)
    b = await open_raw(web_b, client_id="meta-b")
    await send(b, {"type": "subscribe", "id": "m", "query": "messages.list", "args": {"threadId": tid}})
    await until(b, lambda f: f["type"] == "result")
    await send(a, {"type": "mutate", "id": "s", "name": "messages.send",
                   "args": {"threadId": tid, "prompt": "hi", "generate": False, "metadata": {"lang": "pt"}}})
    mid = (await until(a, lambda f: f["type"] == "mutated"))["value"]["messageId"]
    seen = await until(b, lambda f: f["type"] == "result" and f["value"]["page"])
    assert seen["value"]["page"][0]["metadata"] == {"lang": "pt"}
    await send(a, {"type": "mutate", "id": "u", "name": "messages.update",
                   "args": {"messageId": mid, "metadata": {"lang": "pt", "pinned": True}}})
    updated = await until(a, lambda f: f["type"] == "mutated")
    assert updated["ok"] and updated["value"]["metadata"] == {"lang": "pt", "pinned": True}
    assert updated["value"]["text"] == "hi"
    seen = await until(b, lambda f: f["type"] == "result" and f["value"]["page"][0]["metadata"].get("pinned"))
    await send(a, {"type": "mutate", "id": "big", "name": "messages.update",
                   "args": {"messageId": mid, "metadata": {"x": "y" * 9000}}})
    refused = await until(a, lambda f: f["type"] == "mutated")
    assert not refused["ok"] and refused["error"]["code"] == "bad_request"
    async with httpx.AsyncClient(base_url=web, timeout=10) as http:
        r = await http.patch(f"/api/messages/{mid}", json={"metadata": None},
                             headers={"Authorization": f"Bearer {token_for('alice')}"})
        assert r.status_code == 200 and r.json()["metadata"] is None
        r = await http.patch(f"/api/messages/{mid}", json={"metadata": {"a": 1}},
                             headers={"Authorization": f"Bearer {token_for('bob')}"})
        assert r.status_code == 404
    seen = await until(b, lambda f: f["type"] == "result" and f["value"]["page"][0]["metadata"] is None)
    assert seen["value"]["page"][0]["text"] == "hi"
    await a.close()
    await b.close()
