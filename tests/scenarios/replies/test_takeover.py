"""A person takes a thread over from its agents (a staff member), answers as a human agent, and gives
it back: through real web processes, workers and the scripted model."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from rq import Queue
from rq.job import Job

from tests.scenarios.replies.helpers import new_thread, open_tab, reply_of, token, watch_args
from tests.support.stack import SECRET, Stack
from threadline.workers.queues import GENERATION

pytestmark = pytest.mark.anyio

SLOW = {"kind": "hang", "chunks": ["thinking ", "about ", "it "], "delay_ms": 10}


def staff_headers() -> dict[str, str]:
    from threadline.shared.auth import mint

    return {"Authorization": f"Bearer {mint(SECRET, 'ana', admin=True)}"}


async def test_staff_take_over_answer_as_a_human_agent_and_give_the_thread_back(llm: Stack) -> None:
    llm.script(SLOW, {"kind": "text", "chunks": ["back ", "again"]})
    tab = await open_tab(llm.webs[0], client_id="owner")
    tid = await new_thread(tab)
    await tab.subscribe("m", "messages.list", watch_args(tid))
    await tab.subscribe("t", "threads.get", {"threadId": tid})
    await tab.mutate("messages.send", {"threadId": tid, "prompt": "help", "agentName": "echo"})
    await tab.wait(lambda f: f["type"] == "delta" and "about" in str(f["parts"]))
    async with httpx.AsyncClient(base_url=llm.webs[1], headers=staff_headers(), timeout=10) as staff, \
            httpx.AsyncClient(base_url=llm.webs[1], headers={"Authorization": f"Bearer {token('bob')}"},
                              timeout=10) as bob:
        assert (await bob.post(f"/api/threads/{tid}/takeover", json={"agentName": "x"})).status_code == 404
        r = await staff.post(f"/api/threads/{tid}/takeover", json={"agentName": "support", "metadata": {"name": "Ana"}})
        assert r.status_code == 200, r.text
        taken = r.json()["takeover"]
        assert (taken["agentName"], taken["userId"], taken["metadata"]) == ("support", "ana", {"name": "Ana"})
        # the reply that was streaming stops; every tab sees the thread taken over
        await tab.wait_result("m", lambda v: reply_of(v, 1, ("failed",)) is not None)
        await tab.wait_result("t", lambda v: (v.get("takeover") or {}).get("agentName") == "support")
        requests = len(llm.llm_requests())
        sent = await tab.mutate("messages.send", {"threadId": tid, "prompt": "anyone?", "agentName": "echo"})
        assert sent["ok"] and sent["value"]["held"] is True and sent["value"]["order"] == 2
        regen = await tab.mutate("messages.regenerate", {"messageId": sent["value"]["messageId"], "agentName": "echo"})
        assert not regen["ok"] and regen["error"]["code"] == "conflict"
        # the AI SDK's transport: the message is kept, the stream ends at once with no reply
        owner = {"Authorization": f"Bearer {token('alice')}"}
        body = {"id": tid, "messages": [{"id": "ui-held", "role": "user", "parts": [{"type": "text", "text": "hello?"}]}],
                "trigger": "submit-message", "agentName": "echo"}
        async with httpx.AsyncClient(base_url=llm.webs[0], headers=owner, timeout=10) as http, \
                http.stream("POST", "/api/chat", json=body) as r:
            assert r.status_code == 200 and [line async for line in r.aiter_lines() if line] == ["data: [DONE]"]
        await tab.wait_result("m", lambda v: any(m["text"] == "hello?" for m in v["page"]))
        # staff answer as the human agent, in the owner's thread, with the app's metadata
        r = await staff.post(f"/api/threads/{tid}/messages", json={
            "message": {"role": "assistant", "content": "Ana here, on it."}, "agentName": "support",
            "generate": False, "promptMessageId": sent["value"]["messageId"],
            "metadata": {"name": "Ana", "avatar": "/ana.png"}})
        assert r.status_code == 201, r.text
        frame = await tab.wait_result("m", lambda v: any(m["text"] == "Ana here, on it." for m in v["page"]))
        human = next(m for m in frame["value"]["page"] if m["text"] == "Ana here, on it.")
        assert (human["role"], human["agentName"], human["order"], human["userId"]) == ("assistant", "support", 2, "ana")  # who wrote it
        assert human["metadata"] == {"name": "Ana", "avatar": "/ana.png"}
        # a bob-like non-admin cannot write as a human agent in alice's thread
        r = await bob.post(f"/api/threads/{tid}/messages", json={
            "message": {"role": "assistant", "content": "x"}, "agentName": "support", "generate": False})
        assert r.status_code == 404
        # a job that raced the takeover (enqueued meanwhile) answers nothing
        job = Queue(GENERATION, connection=llm.rq()).enqueue(
            "threadline.workers.reply_job.run", tid, sent["value"]["messageId"], "echo")
        assert await _result(llm, job.id) == "held"
        assert len(llm.llm_requests()) == requests  # no model call while taken over
        r = await staff.post(f"/api/threads/{tid}/release")
        assert r.status_code == 200 and r.json()["takeover"] is None
    await tab.wait_result("t", lambda v: v.get("takeover") is None)
    again = await tab.mutate("messages.send", {"threadId": tid, "prompt": "and now?", "agentName": "echo"})
    assert "held" not in again["value"]
    assert again["value"]["order"] == 4  # (3: the message sent through the AI SDK while held)
    frame = await tab.wait_result("m", lambda v: reply_of(v, 4, ("success",)) is not None)
    assert reply_of(frame["value"], 4)["text"] == "back again"
    await tab.close()


async def _result(llm: Stack, job_id: str, timeout: float = 20.0) -> object:
    rq = llm.rq()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            job = Job.fetch(job_id, connection=rq)
            if job.is_finished or job.is_failed:
                return job.return_value()
            await asyncio.sleep(0.05)
    finally:
        rq.close()
    raise AssertionError("the job did not end")
