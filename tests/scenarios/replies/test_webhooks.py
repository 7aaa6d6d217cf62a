"""Webhooks through real processes: an admin registers a receiver on loopback, replies end, and the
receiver (verifying every signature with the Standard Webhooks library) gets each event once, a
refused attempt again after the backoff, and nothing after its last retry; a worker that dies between
a reply's end and the delivery's record leaves it to the outbox sweeper, which delivers it once."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.scenarios.replies.helpers import new_thread, open_tab, reply_of, token, watch_args
from tests.support import procs
from tests.support.stack import SECRET, Stack, run_stack
from tests.support.webhook_receiver import Receiver
from threadline.shared.storage.embedded import free_port

pytestmark = pytest.mark.anyio

LIMITED = {"name": "tiny", "limit": 1, "periodS": 3600, "agents": ["titled"]}  # one send an hour with this agent


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One web process, no worker yet (each test starts its own), retries 1 s apart, two retries."""
    with run_stack(tmp_path_factory.mktemp("webhooks"), webs=1, worker=False,
                   env={"WEBHOOK_BACKOFF_S": "1,1", "RATE_LIMITS": json.dumps([LIMITED])}) as s:
        yield s


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def admin() -> httpx.Client:
    from threadline.shared.auth import mint

    return httpx.Client(headers={"Authorization": f"Bearer {mint(SECRET, 'ops', admin=True)}"}, timeout=10)


def register(stack: Stack, url: str, events: list[str]) -> tuple[str, str]:
    with admin() as http:
        r = http.post(f"{stack.web}/api/admin/webhooks", json={"url": url, "events": events})
    assert r.status_code == 201, r.text
    time.sleep(1.1)  # every process sees a new endpoint within a second
    return r.json()["webhookId"], r.json()["secret"]


def attempts(stack: Stack, webhook_id: str) -> list[dict[str, Any]]:
    with admin() as http:
        r = http.get(f"{stack.web}/api/admin/webhooks/{webhook_id}/deliveries")
    assert r.status_code == 200, r.text
    return r.json()["attempts"]  # type: ignore[no-any-return]


def unregister(stack: Stack, webhook_id: str) -> None:
    with admin() as http:
        assert http.delete(f"{stack.web}/api/admin/webhooks/{webhook_id}").status_code == 200
        assert http.get(f"{stack.web}/api/admin/webhooks/{webhook_id}").status_code == 404


async def reply_in_new_thread(stack: Stack, prompt: str, statuses: tuple[str, ...] = ("success",)) -> tuple[str, Any]:
    tab = await open_tab(stack.web, client_id=prompt)
    try:
        tid = await new_thread(tab)
        await tab.subscribe("m", "messages.list", watch_args(tid))
        await tab.mutate("messages.send", {"threadId": tid, "prompt": prompt, "agentName": "echo"})
        value = await tab.wait_result("m", lambda v: reply_of(v, 1, statuses) is not None, timeout=30)
        return tid, reply_of(value["value"], 1, statuses)
    finally:
        await tab.ws.close()


async def test_an_admin_registers_a_receiver_and_bad_registrations_are_refused(stack: Stack) -> None:
    with admin() as http:
        for body in ({"url": "ftp://x/y", "events": ["reply.finished"]},
                     {"url": "http://127.0.0.1:9/h", "events": ["reply.done"]},
                     {"url": "http://127.0.0.1:9/h", "events": []},
                     {"url": "http://127.0.0.1:9/h", "events": ["reply.failed"], "other": 1}):
            r = http.post(f"{stack.web}/api/admin/webhooks", json=body)
            assert r.status_code == 400 and r.json()["code"] == "bad_request", (body, r.text)
        r = http.post(f"{stack.web}/api/admin/webhooks",
                      json={"url": "http://127.0.0.1:9/h", "events": ["reply.failed", "reply.finished"],
                            "description": "billing"})
        assert r.status_code == 201 and r.json()["secret"].startswith("whsec_")
        wid = r.json()["webhookId"]
        listed = http.get(f"{stack.web}/api/admin/webhooks").json()["webhooks"]
        assert [(w["webhookId"], w["events"], w["description"]) for w in listed] == [
            (wid, ["reply.failed", "reply.finished"], "billing")]
        assert "secret" not in listed[0]
    users = httpx.Client(headers={"Authorization": f"Bearer {token('alice')}"}, timeout=10)
    with users:
        assert users.get(f"{stack.web}/api/admin/webhooks").status_code == 403
        assert users.post(f"{stack.web}/api/admin/webhooks", json={"url": "http://a/b"}).status_code == 403
    unregister(stack, wid)


async def test_a_finished_reply_reaches_the_receiver_once_and_a_refused_attempt_comes_again(
        stack: Stack, receiver: Receiver) -> None:
    worker = stack.start_worker("w-deliver")
    wid, receiver.secret = register(stack, receiver.url, ["reply.finished", "reply.failed"])
    receiver.refuse_first = {"reply.finished"}
    try:
        tid, reply = await reply_in_new_thread(stack, "hello hooks")
        ((delivery_id, payload),) = receiver.wait("reply.finished")
        data = payload["data"]
        assert (data["threadId"], data["messageId"], data["status"], data["text"], data["agentName"]) == (
            tid, reply["messageId"], "success", reply["text"], "echo")
        assert data["threadOwner"] == "alice" and payload["eventId"] == f"evt_{data['streamId']}"
        assert receiver.refused == [delivery_id] and delivery_id.startswith("msg_")  # the same id, retried
        time.sleep(2.5)  # past every retry there could be: nothing more comes
        assert [w for w, _ in receiver.accepted] == [delivery_id] and receiver.forged == 0
        log = attempts(stack, wid)
        assert [(a["attempt"], a["outcome"], a.get("statusCode")) for a in log] == [
            (2, "delivered", 200), (1, "retry", 500)]
        assert log[1]["nextAt"] >= log[1]["at"] + 1000 and log[0]["deliveryId"] == delivery_id
    finally:
        unregister(stack, wid)
        procs.stop(worker)


async def test_a_failed_reply_is_told_as_failed_and_a_receiver_never_reached_ends_failed(
        stack: Stack, receiver: Receiver) -> None:
    worker = stack.start_worker("w-fail")
    wid, receiver.secret = register(stack, receiver.url, ["reply.failed"])
    closed = free_port()
    dead, _ = register(stack, f"http://127.0.0.1:{closed}/nobody", ["reply.failed"])
    try:
        stack.script({"kind": "status", "status": 400, "body": {"error": {"message": "no such model"}}})
        tid, reply = await reply_in_new_thread(stack, "fail please", ("failed",))
        ((_, payload),) = receiver.wait("reply.failed")
        assert payload["data"]["threadId"] == tid and payload["data"]["status"] == "failed"
        assert payload["data"]["error"] == reply["error"]
        deadline = time.monotonic() + 30
        while len(log := attempts(stack, dead)) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.5)  # no fourth attempt comes
        log = attempts(stack, dead)
        assert [(a["attempt"], a["outcome"]) for a in log] == [(3, "failed"), (2, "retry"), (1, "retry")]
        assert "ConnectError" in log[0]["error"]
    finally:
        unregister(stack, wid)
        unregister(stack, dead)
        procs.stop(worker)


async def test_a_worker_dead_between_the_end_and_the_delivery_record_is_covered_by_the_sweeper(
        stack: Stack, receiver: Receiver) -> None:
    """The worker exits right after the reply's end was stored with its event's follow-up (crash point
    follow:webhook.reply): the web process's outbox sweeper records the delivery, which arrives once."""
    crashing = stack.start_worker("w-crash", THREADLINE_CRASH_AT="follow:webhook.reply")
    wid, receiver.secret = register(stack, receiver.url, ["reply.finished"])
    try:
        tid, reply = await reply_in_new_thread(stack, "crash after the end")
        ((_, payload),) = receiver.wait("reply.finished", timeout=60)
        assert payload["data"]["threadId"] == tid and payload["data"]["messageId"] == reply["messageId"]
        first = attempts(stack, wid)[-1]
        ended_ms = _ms(payload["timestamp"])
        assert first["at"] - ended_ms >= 4000, (first, payload)  # the sweeper's (5 s late), not the writer's (ms)
        time.sleep(2.5)
        assert len(receiver.of("reply.finished")) == 1
    finally:
        unregister(stack, wid)
        procs.stop(crashing)


async def test_a_workflow_run_and_a_limit_reached_are_told_once_each(stack: Stack, receiver: Receiver) -> None:
    worker = stack.start_worker("w-other")
    wid, receiver.secret = register(stack, receiver.url, ["workflow.finished", "usage.limit_reached"])
    alice = {"Authorization": f"Bearer {token('alice')}"}
    try:
        async with httpx.AsyncClient(base_url=stack.web, headers=alice, timeout=10) as http:
            r = await http.post("/api/workflows", json={"name": "child_sum", "args": [1, 2, 3]})
            assert r.status_code == 201, r.text
            run_id = r.json()["runId"]
            ((_, ended),) = receiver.wait("workflow.finished")
            assert ended["data"] | {"createdAt": 0, "finishedAt": 0} == {
                "runId": run_id, "name": "child_sum", "userId": "alice", "status": "completed", "result": 6,
                "resultTruncated": False, "error": None, "createdAt": 0, "finishedAt": 0}
            tid = (await http.post("/api/threads", json={})).json()["threadId"]
            codes = [(await http.post(f"/api/threads/{tid}/messages", json={"prompt": f"p{i}", "agentName": "titled"}))
                     .status_code for i in range(3)]
            assert codes == [201, 429, 429], codes
        ((_, reached),) = receiver.wait("usage.limit_reached")
        assert {k: reached["data"][k] for k in ("userId", "limit", "on", "max", "agentName")} == {
            "userId": "alice", "limit": "tiny", "on": "messages", "max": 1, "agentName": "titled"}
        time.sleep(1.5)  # the second refusal in the same hour told nothing more
        assert len(receiver.of("usage.limit_reached")) == 1 and len(receiver.of("workflow.finished")) == 1
    finally:
        unregister(stack, wid)
        procs.stop(worker)


def _ms(iso: str) -> int:
    import datetime

    return int(datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)
