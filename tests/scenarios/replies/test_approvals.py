"""Tool approval through real processes: a call that needs approval ends the reply with a request
every tab sees; one decision stands however many tabs decide at once; approval runs the tool and the
reply goes on, denial tells the model so; over WebSocket and HTTP."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from tests.scenarios.replies.helpers import new_thread, open_tab, token, watch_args
from tests.scenarios.replies.test_agents import by_step
from tests.support.stack import Stack
from tests.support.wsutil import Tab

pytestmark = pytest.mark.anyio

ASK = {"kind": "tools", "calls": [{"name": "transfer", "arguments": '{"to": "bob", "amount": 500}'},
                                  {"name": "transfer", "arguments": '{"to": "ann", "amount": 5}'}]}


def ended(value: dict[str, Any]) -> bool:
    return bool(value["streams"]) and value["streams"][-1]["status"] != "streaming"


def transfers(llm: Stack) -> list[dict[str, Any]]:
    return [json.loads(t) for t in llm.store().lrange("test:transfers", 0, -1)]


async def asked(llm: Stack, user: str) -> tuple[Tab, str, dict[str, Any]]:
    """A reply that waits for approval of the transfer to bob (the one to ann ran)."""
    llm.store().delete("test:transfers")
    tab = await open_tab(llm.web, user=user, client_id=f"{user}-1")
    tid = await new_thread(tab)
    await tab.subscribe("m", "messages.list", watch_args(tid))
    await tab.mutate("messages.send", {"threadId": tid, "prompt": "pay bob and ann", "agentName": "banker"})
    frame = await tab.wait_result("m", ended)
    request = next(p for m in frame["value"]["page"] for p in m["parts"] if p["type"] == "tool-approval-request")
    return tab, tid, request


async def test_approval_runs_the_tool_and_the_reply_goes_on(llm: Stack) -> None:
    llm.script(ASK, {"kind": "text", "chunks": ["Both ", "sent."]})
    tab, tid, request = await asked(llm, "payer")
    assert (request["toolName"], request["args"]) == ("transfer", {"to": "bob", "amount": 500})
    assert transfers(llm) == [{"to": "ann", "amount": 5}]  # the small one ran, the big one waits
    other = await open_tab(llm.webs[1], user="payer", client_id="payer-2")  # another tab, another web process
    done = await other.mutate("tools.approve", {"threadId": tid, "approvalId": request["approvalId"],
                                                "approved": True})
    assert done["value"] == {"approvalId": request["approvalId"], "toolCallId": request["toolCallId"],
                             "approved": True, "reason": None, "decided": True}, done
    frame = await tab.wait_result("m", lambda v: any(m["text"] == "Both sent." for m in v["page"]))
    assert transfers(llm) == [{"to": "ann", "amount": 5}, {"to": "bob", "amount": 500}]
    steps = by_step(frame["value"])
    assert [[p["type"] for p in m["parts"]] for m in steps] == [
        ["text"], ["tool-call", "tool-call", "tool-approval-request"], ["tool-result"], ["tool-approval-response"],
        ["tool-result"], ["text"]]
    last = llm.llm_requests()[-1]["messages"]
    assert [m["role"] for m in last[-3:]] == ["assistant", "tool", "tool"]  # both calls, both results
    assert json.dumps({"sent": 500, "to": "bob"}) in [m["content"] for m in last[-2:]]
    again = await other.mutate("tools.approve", {"threadId": tid, "approvalId": request["approvalId"],
                                                 "approved": False, "reason": "changed my mind"})
    assert again["value"]["decided"] is False and again["value"]["approved"] is True  # the first stands
    await asyncio.sleep(0.5)
    assert len(llm.llm_requests()) == 2 and len(transfers(llm)) == 2  # nothing ran again
    await tab.close()
    await other.close()


async def test_denial_tells_the_model_and_runs_nothing(llm: Stack) -> None:
    llm.script(ASK, {"kind": "text", "chunks": ["Only ann was paid."]})
    tab, tid, request = await asked(llm, "denier")
    with httpx.Client(base_url=llm.web, headers={"Authorization": f"Bearer {token('denier')}"}, timeout=10) as c:
        r = c.post(f"/api/threads/{tid}/approvals/{request['approvalId']}",
                   json={"approved": False, "reason": "too much"})
    assert r.status_code == 200 and r.json()["decided"] is True, r.text
    await tab.wait_result("m", lambda v: any(m["text"] == "Only ann was paid." for m in v["page"]))
    assert transfers(llm) == [{"to": "ann", "amount": 5}]
    told = [m["content"] for m in llm.llm_requests()[-1]["messages"] if m["role"] == "tool"]
    assert json.dumps({"type": "execution-denied", "reason": "too much"}) in told
    await tab.close()


async def test_tabs_deciding_at_once_leave_one_decision_and_one_continuation(llm: Stack) -> None:
    llm.script(ASK, {"kind": "text", "chunks": ["done"]})
    tab, tid, request = await asked(llm, "racer")
    tabs = [await open_tab(llm.webs[i % 2], user="racer", client_id=f"racer-{i}") for i in range(6)]
    outcomes = await asyncio.gather(*(t.mutate("tools.approve", {
        "threadId": tid, "approvalId": request["approvalId"], "approved": i % 2 == 0}) for i, t in enumerate(tabs)))
    stood = {o["value"]["approved"] for o in outcomes}
    assert len(stood) == 1, outcomes  # every tab is told the same decision
    assert sum(o["value"]["decided"] for o in outcomes) >= 1
    frame = await tab.wait_result("m", lambda v: any(m["text"] == "done" for m in v["page"]))
    decisions = [p for m in frame["value"]["page"] for p in m["parts"] if p["type"] == "tool-approval-response"]
    assert len(decisions) == 1 and decisions[0]["approved"] in stood
    await asyncio.sleep(0.5)
    assert len(llm.llm_requests()) == 2  # one continuation
    assert transfers(llm).count({"to": "bob", "amount": 500}) == (1 if stood == {True} else 0)
    for t in (tab, *tabs):
        await t.close()


async def test_an_unknown_request_or_another_users_thread_is_not_found(llm: Stack) -> None:
    llm.script(ASK)
    tab, tid, request = await asked(llm, "owner")
    out = await tab.mutate("tools.approve", {"threadId": tid, "approvalId": "apr_nope", "approved": True})
    assert out["error"]["code"] == "not_found"
    stranger = await open_tab(llm.web, user="stranger", client_id="s")
    out = await stranger.mutate("tools.approve", {"threadId": tid, "approvalId": request["approvalId"],
                                                  "approved": True})
    assert out["error"]["code"] == "not_found"
    assert transfers(llm) == [{"to": "ann", "amount": 5}]
    await tab.close()
    await stranger.close()


@pytest.fixture
def restartable(tmp_path: Any) -> Any:
    from tests.support.stack import run_stack

    with run_stack(tmp_path / "stack", workers=1) as stack:
        yield stack


async def test_a_decision_made_while_no_worker_runs_is_answered_by_the_next_worker(restartable: Stack) -> None:
    from tests.support import procs

    llm = restartable
    llm.script(ASK, {"kind": "text", "chunks": ["after the restart"]})
    tab, tid, request = await asked(llm, "patient")
    for proc in [p for p in llm.procs if "threadline.workers" in p.args]:
        procs.stop(proc)  # every worker gone: the decision waits in the queue
    done = await tab.mutate("tools.approve", {"threadId": tid, "approvalId": request["approvalId"], "approved": True})
    assert done["value"]["decided"] is True
    await asyncio.sleep(0.5)
    assert len(transfers(llm)) == 1 and len(llm.llm_requests()) == 1
    llm.start_worker("worker-after")
    await tab.wait_result("m", lambda v: any(m["text"] == "after the restart" for m in v["page"]), )
    assert transfers(llm) == [{"to": "ann", "amount": 5}, {"to": "bob", "amount": 500}]
    await tab.close()


async def test_the_reply_that_goes_on_answers_the_request_that_asked(llm: Stack) -> None:
    from tests.scenarios.replies.test_request_context import carol_tab

    llm.script({"kind": "tools", "calls": [{"name": "stamp", "arguments": "{}"}]}, {"kind": "text", "chunks": ["ok"]})
    tab = await carol_tab(llm.web)
    tid = await new_thread(tab)
    await tab.subscribe("m", "messages.list", watch_args(tid))
    context = {"document": "contract.md", "plan": "pro"}
    await tab.mutate("messages.send", {"threadId": tid, "prompt": "stamp it", "agentName": "desk-approver",
                                       "context": context})
    frame = await tab.wait_result("m", ended)
    request = next(p for m in frame["value"]["page"] for p in m["parts"] if p["type"] == "tool-approval-request")
    await tab.mutate("tools.approve", {"threadId": tid, "approvalId": request["approvalId"], "approved": True})
    frame = await tab.wait_result("m", lambda v: any(m["text"] == "ok" for m in v["page"]))
    result = next(p for m in frame["value"]["page"] for p in m["parts"] if p["type"] == "tool-result")
    assert result["result"] == {"stamped": context, "claims": {"org": "acme", "roles": ["editor"]}}
    await tab.close()
