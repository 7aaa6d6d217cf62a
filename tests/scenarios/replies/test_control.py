"""Abort from any tab, a worker killed mid-stream, double texting, exactly-once enqueue."""

from __future__ import annotations

import asyncio
import os
import signal

import httpx
import pytest

from tests.scenarios.replies.helpers import new_thread, open_tab, reply_of, token, watch_args
from tests.support.stack import Stack
from tests.support.wsutil import Tab
from threadline.shared import keys

pytestmark = pytest.mark.anyio

SLOW = {"kind": "hang", "chunks": ["partial ", "text ", "so ", "far "], "delay_ms": 10}


async def slow_reply(llm: Stack, base: str, client_id: str = "a") -> tuple[Tab, str, dict]:  # type: ignore[type-arg]
    """A tab watching a thread whose reply streamed "partial text so far " and hangs there."""
    llm.script(SLOW)
    tab = await open_tab(base, client_id=client_id)
    tid = await new_thread(tab)
    await tab.subscribe("m", "messages.list", watch_args(tid))
    await tab.mutate("messages.send", {"threadId": tid, "prompt": "go", "agentName": "echo"})
    delta = await tab.wait(lambda f: f["type"] == "delta" and "far" in str(f["parts"]))
    return tab, tid, delta


async def test_abort_from_another_tab_keeps_the_partial_text_as_failed(llm: Stack) -> None:
    a, tid, _ = await slow_reply(llm, llm.webs[0])
    b = await open_tab(llm.webs[1], client_id="b")
    loop = asyncio.get_running_loop()
    asked = loop.time()
    out = await b.mutate("streams.abort", {"threadId": tid})
    assert out["value"] == {"aborted": 1}
    frame = await a.wait_result("m", lambda v: reply_of(v, 1, ("failed",)) is not None)
    took = loop.time() - asked
    reply = reply_of(frame["value"], 1)
    assert reply["text"] == "partial text so far " and reply["error"] == "aborted"
    assert frame["value"]["streams"][0]["status"] == "aborted"
    print(f"abort -> failed message at the subscriber: {took * 1000:.0f} ms")
    await a.close()
    await b.close()


async def test_an_aborted_reply_sends_what_it_received_so_the_deltas_are_the_stored_text(llm: Stack) -> None:
    """The model's text arrives faster than the agent's deltas go out (a 5 s throttle): at the abort,
    text no tab was sent yet goes out as the stream's last delta before the reply is stored."""
    llm.script({"kind": "hang", "chunks": ["one ", "two ", "three ", "four ", "five"], "delay_ms": 10})
    tab = await open_tab(llm.web, client_id="flush")
    tid = await new_thread(tab)
    await tab.subscribe("m", "messages.list", watch_args(tid))
    await tab.mutate("messages.send", {"threadId": tid, "prompt": "go", "agentName": "slow-flush"})
    first = await tab.wait(lambda f: f["type"] == "delta")
    await asyncio.sleep(1.0)  # the rest arrives meanwhile and waits for the throttle
    assert (await tab.mutate("streams.abort", {"threadId": tid}))["value"] == {"aborted": 1}
    stream = keys.stream(tid, first["streamId"])
    with llm.store() as r:  # the worker has stored the reply
        for _ in range(200):
            if r.hget(stream, "final") == b"1":
                break
            await asyncio.sleep(0.05)
    frame = await tab.wait_result("m", lambda v: (reply_of(v, 1, ("failed",)) or {}).get("text", "").endswith("five"))
    reply = reply_of(frame["value"], 1)
    assert (reply["text"], reply["error"]) == ("one two three four five", "aborted")
    await tab.wait(lambda f: f["type"] == "delta" and "five" in str(f["parts"]))  # the last delta came too
    sent = "".join(p["text"] for f in tab.frames if f["type"] == "delta" and f["streamId"] == first["streamId"]
                   for p in f["parts"] if p["type"] == "text")
    assert sent == reply["text"]
    await tab.close()


async def test_http_abort_stops_the_generation(llm: Stack) -> None:
    a, tid, _ = await slow_reply(llm, llm.web)
    async with httpx.AsyncClient(base_url=llm.webs[1]) as http:
        r = await http.post(f"/api/threads/{tid}/abort", headers={"Authorization": f"Bearer {token('alice')}"})
    assert r.json() == {"aborted": 1}
    await a.wait_result("m", lambda v: reply_of(v, 1, ("failed",)) is not None)
    await a.close()


async def test_a_worker_killed_mid_stream_is_ended_and_its_reply_failed(llm: Stack) -> None:
    a, tid, delta = await slow_reply(llm, llm.web)
    client = llm.store()
    from threadline.shared import keys

    worker = client.hget(keys.stream(tid, delta["streamId"]), "worker").decode()
    client.close()
    os.kill(int(worker.rsplit(":", 1)[1]), signal.SIGKILL)
    frame = await a.wait_result("m", lambda v: reply_of(v, 1, ("failed",)) is not None, timeout=30)
    reply = reply_of(frame["value"], 1)
    assert reply["text"] == "partial text so far " and "worker" in reply["error"]
    assert frame["value"]["streams"][0]["status"] == "aborted"
    # the thread is usable again: the next prompt is answered
    await a.mutate("messages.send", {"threadId": tid, "prompt": "again", "agentName": "echo"})
    await a.wait_result("m", lambda v: reply_of(v, 2, ("success",)) is not None, timeout=30)
    await a.close()


async def test_double_texting_reject_and_interrupt(llm: Stack) -> None:
    a = await open_tab(llm.web, client_id="a")
    tid = await new_thread(a)
    await a.subscribe("m", "messages.list", watch_args(tid))
    llm.script(SLOW)
    await a.mutate("messages.send", {"threadId": tid, "prompt": "first", "agentName": "echo"})
    await a.wait(lambda f: f["type"] == "delta")
    rejected = await a.mutate("messages.send", {"threadId": tid, "prompt": "second", "agentName": "strict"})
    assert rejected["ok"] is False and rejected["error"]["code"] == "conflict"
    interrupted = await a.mutate("messages.send", {"threadId": tid, "prompt": "third", "agentName": "interrupting"})
    assert interrupted["ok"] and interrupted["value"]["order"] == 2
    frame = await a.wait_result("m", lambda v: reply_of(v, 2, ("success",)) is not None)
    assert reply_of(frame["value"], 1)["status"] == "failed"
    assert [m["text"] for m in frame["value"]["page"] if m["role"] == "user"] == ["third", "first"]
    await a.close()


async def test_enqueue_strategy_answers_prompts_one_after_another(llm: Stack) -> None:
    llm.script({"kind": "text", "chunks": ["one ", "reply"], "delay_ms": 100},
               {"kind": "text", "chunks": ["two ", "reply"]})
    a = await open_tab(llm.web, client_id="a")
    tid = await new_thread(a)
    await a.subscribe("m", "messages.list", watch_args(tid))
    await a.mutate("messages.send", {"threadId": tid, "prompt": "p1", "agentName": "echo"})
    await a.mutate("messages.send", {"threadId": tid, "prompt": "p2", "agentName": "echo"})
    frame = await a.wait_result("m", lambda v: reply_of(v, 2, ("success",)) is not None)
    assert reply_of(frame["value"], 1)["text"] == "one reply"
    assert reply_of(frame["value"], 2)["text"] == "two reply"
    second_call = llm.llm_requests()[1]["messages"]
    assert [m["content"] for m in second_call if m["role"] != "system"] == ["p1", "one reply", "p2"]
    await a.close()


async def test_a_resent_send_never_enqueues_twice(llm: Stack) -> None:
    a = await open_tab(llm.web, client_id="same-tab")
    tid = await new_thread(a)
    await a.subscribe("m", "messages.list", watch_args(tid))
    args = {"threadId": tid, "prompt": "once", "agentName": "echo"}
    first = await a.mutate("messages.send", args, request_id="dup-1")
    b = await open_tab(llm.webs[1], client_id="same-tab")
    again = await b.mutate("messages.send", args, request_id="dup-1")
    assert again["value"] == first["value"]
    frame = await a.wait_result("m", lambda v: reply_of(v, 1, ("success",)) is not None)
    await asyncio.sleep(0.5)
    assert len(llm.llm_requests()) == 1
    assert len([m for m in frame["value"]["page"] if m["role"] == "assistant"]) == 1
    await a.close()
    await b.close()


async def test_regenerating_a_prompt_fails_its_earlier_pending_reply(llm: Stack) -> None:
    import msgspec

    from threadline.shared.records import Message
    from threadline.shared.storage.client import connect
    from threadline.shared.threads import Store

    a = await open_tab(llm.web, client_id="a")
    tid = await new_thread(a)
    await a.subscribe("m", "messages.list", watch_args(tid))
    sent = await a.mutate("messages.send", {"threadId": tid, "prompt": "q", "generate": False})
    client = connect(llm.redis_url)
    store = Store(client)
    await store.messages.save(tid, "alice", [Message(message_id="", thread_id=tid, role="assistant",
                                                     status="pending")],
                              prompt_message_id=sent["value"]["messageId"])
    await client.aclose()
    await a.mutate("messages.regenerate", {"messageId": sent["value"]["messageId"], "agentName": "echo"})
    frame = await a.wait_result("m", lambda v: reply_of(v, 1, ("success",)) is not None)
    replies = sorted((m for m in frame["value"]["page"] if m["role"] == "assistant"), key=lambda m: m["stepOrder"])
    assert [(m["stepOrder"], m["status"]) for m in replies] == [(1, "failed"), (2, "success")]
    assert replies[0]["error"] == "superseded by a newer generation"
    assert msgspec.json.encode(replies[1]["text"])
    await a.close()


async def test_regenerating_over_http_answers_once_per_idempotency_key(llm: Stack) -> None:
    tab = await open_tab(llm.web, client_id="a")
    tid = await new_thread(tab)
    await tab.subscribe("m", "messages.list", watch_args(tid))
    headers = {"Authorization": f"Bearer {token('alice')}"}
    async with httpx.AsyncClient(base_url=llm.web, headers=headers, timeout=10) as http:
        sent = (await http.post(f"/api/threads/{tid}/messages", json={"prompt": "q", "generate": False})).json()
        route = f"/api/messages/{sent['messageId']}/regenerate"
        for _ in range(2):  # a retried request: the same reply
            r = await http.post(route, json={"agentName": "echo"}, headers={"Idempotency-Key": "regen-1"})
            assert r.status_code == 202 and r.json() == {"messageId": sent["messageId"]}
        frame = await tab.wait_result("m", lambda v: reply_of(v, 1, ("success",)) is not None)
        r = await http.post(route, json={"agentName": "echo"}, headers={"Authorization": f"Bearer {token('bob')}"})
        assert r.status_code == 404
        r = await http.post(route, json={"agentName": "nobody"})
        assert r.status_code == 400
        await asyncio.sleep(0.5)  # a second reply, were there one, would be on its way
        page = (await http.get(f"/api/threads/{tid}/messages")).json()["page"]
    assert [(m["role"], m["status"]) for m in page] == [("assistant", "success"), ("user", "success")], frame
    await tab.close()


async def test_an_agent_that_retries_answers_again_after_its_worker_died(llm: Stack) -> None:
    llm.script(SLOW, {"kind": "text", "chunks": ["second ", "try"]})
    a = await open_tab(llm.web, client_id="a")
    tid = await new_thread(a)
    await a.subscribe("m", "messages.list", watch_args(tid))
    await a.mutate("messages.send", {"threadId": tid, "prompt": "go", "agentName": "resilient"})
    delta = await a.wait(lambda f: f["type"] == "delta" and "far" in str(f["parts"]))
    client = llm.store()
    from threadline.shared import keys

    worker = client.hget(keys.stream(tid, delta["streamId"]), "worker").decode()
    client.close()
    os.kill(int(worker.rsplit(":", 1)[1]), signal.SIGKILL)
    frame = await a.wait_result("m", lambda v: reply_of(v, 1, ("success",)) is not None, timeout=40)
    replies = sorted((m for m in frame["value"]["page"] if m["role"] == "assistant"), key=lambda m: m["stepOrder"])
    assert [(m["status"], m["text"]) for m in replies] == [("failed", "partial text so far "), ("success", "second try")]
    await a.close()


async def test_an_abort_stops_a_queued_reply_before_it_starts_exactly_once(llm: Stack) -> None:
    a, tid, _ = await slow_reply(llm, llm.webs[0])  # the thread's turn is held by a reply that hangs
    queued = await a.mutate("messages.send", {"threadId": tid, "prompt": "and then?", "agentName": "echo"})
    assert queued["ok"], queued
    b = await open_tab(llm.webs[1], client_id="b")
    await b.subscribe("m", "messages.list", watch_args(tid))
    out = await b.mutate("streams.abort", {"threadId": tid})
    assert out["value"] == {"aborted": 2}  # the streaming reply and the queued one
    for tab in (a, b):  # every tab sees the queued reply end as aborted
        frame = await tab.wait_result("m", lambda v: reply_of(v, 2, ("failed",)) is not None)
    second = [m for m in frame["value"]["page"] if m["order"] == 2 and m["role"] == "assistant"]
    assert [(m["status"], m["error"], m["text"]) for m in second] == [("failed", "aborted", "")]
    assert {s["status"] for s in frame["value"]["streams"]} == {"aborted"}
    again = await a.mutate("streams.abort", {"threadId": tid})
    assert again["value"] == {"aborted": 0}  # nothing is stopped twice
    await asyncio.sleep(0.3)
    assert len(llm.llm_requests()) == 1  # the queued reply never reached the model
    await a.close()
    await b.close()


async def test_an_abort_right_after_the_send_ends_the_reply(llm: Stack) -> None:
    llm.script(SLOW)
    a = await open_tab(llm.web, client_id="a")
    tid = await new_thread(a)
    await a.subscribe("m", "messages.list", watch_args(tid))
    await a.send({"type": "mutate", "id": "send-1", "name": "messages.send",
                  "args": {"threadId": tid, "prompt": "go", "agentName": "echo"}})
    await a.send({"type": "mutate", "id": "abort-1", "name": "streams.abort", "args": {"threadId": tid}})
    out = await a.wait(lambda f: f["type"] == "mutated" and f["id"] == "abort-1")
    assert out["value"] == {"aborted": 1}, out
    frame = await a.wait_result("m", lambda v: reply_of(v, 1, ("failed",)) is not None)
    replies = [m for m in frame["value"]["page"] if m["role"] == "assistant"]
    assert [(m["status"], m["error"]) for m in replies] == [("failed", "aborted")]
    await a.close()
