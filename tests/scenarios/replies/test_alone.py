"""Generation without a thread, through real processes: a one-off HTTP call answers, saves
nothing and counts its usage; an agent used as another's tool answers in the worker, counted
under the calling user."""

from __future__ import annotations

import httpx
import pytest

from tests.scenarios.replies.helpers import new_thread, open_tab, token, watch_args
from tests.scenarios.replies.test_agents import by_step, run_prompt
from tests.support.stack import Stack

pytestmark = pytest.mark.anyio

PLAN = {"kind": "text", "chunks": ['{"city": "Rome", ', '"days": 3}']}


def client(llm: Stack, user: str) -> httpx.Client:
    return httpx.Client(base_url=llm.web, headers={"Authorization": f"Bearer {token(user)}"}, timeout=20)


def test_a_one_off_call_answers_saves_nothing_and_counts_its_usage(llm: Stack) -> None:
    llm.script(PLAN)
    with client(llm, "oneoff") as c:
        r = c.post("/api/generate", json={"agentName": "planner", "prompt": "Three days in Rome",
                                          "messages": [{"role": "system", "content": "Be exact."}]})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["outcome"] == "finished" and body["object"] == {"city": "Rome", "days": 3}
        assert body["usage"]["totalTokens"] > 0
        assert c.get("/api/threads").json()["page"] == []  # no thread, no message
        usage = c.get("/api/usage").json()
        planner = usage["byAgent"]["planner"]
        assert planner["calls"] == 1 and planner["input"] + planner["output"] == body["usage"]["totalTokens"]
    sent = llm.llm_requests()[0]["messages"]
    assert {"role": "system", "content": "Be exact."} in sent and sent[-1] == {"role": "user",
                                                                              "content": "Three days in Rome"}


@pytest.mark.parametrize(("body", "status", "error"), [
    ({"prompt": "x", "agentName": "nobody"}, 400, "unknown agent"),
    ({"prompt": "x", "agentName": "echo", "context": {"a": 1}}, 400, "takes no `context`"),
    ({"prompt": "x", "agentName": "echo", "options": {"temperature": 1}}, 400, "`temperature`"),
    ({"prompt": ""}, 400, "prompt"),
    ({"prompt": "x", "messages": [{"role": "tool", "content": "y"}]}, 400, "role"),
])
def test_a_one_off_call_the_agent_does_not_take_is_refused(llm: Stack, body: dict, status: int,  # type: ignore[type-arg]
                                                           error: str) -> None:
    with client(llm, "oneoff") as c:
        r = c.post("/api/generate", json=body)
    assert r.status_code == status and error in r.json()["message"], r.text
    assert llm.llm_requests() == []


async def test_an_agent_as_a_tool_answers_for_the_calling_user(llm: Stack) -> None:
    llm.script({"kind": "tools", "calls": [{"name": "planner", "arguments": '{"prompt": "Three days in Rome"}'}]},
               PLAN, {"kind": "text", "chunks": ["Rome, ", "three days."]})
    tab = await open_tab(llm.web, user="delegator", client_id="t")
    tid = await new_thread(tab)
    await tab.subscribe("m", "messages.list", watch_args(tid))
    await tab.mutate("messages.send", {"threadId": tid, "prompt": "plan Rome", "agentName": "manager"})
    frame = await tab.wait_result("m", lambda v: bool(v["streams"]) and v["streams"][-1]["status"] != "streaming")
    steps = by_step(frame["value"])
    assert [m["role"] for m in steps] == ["user", "assistant", "tool", "assistant"]
    result = steps[2]["parts"][0]
    assert (result["result"], result["isError"]) == ({"city": "Rome", "days": 3}, False)
    assert steps[3]["text"] == "Rome, three days."
    asked = llm.llm_requests()[1]["messages"]  # the planner's own call: its prompt is the tool's
    assert asked[-1] == {"role": "user", "content": "Three days in Rome"}
    with client(llm, "delegator") as c:
        by_agent = c.get("/api/usage").json()["byAgent"]
    assert by_agent["planner"]["calls"] == 1 and by_agent["manager"]["calls"] == 2
    await tab.close()


async def test_agents_calling_agents_stop_at_a_bounded_depth(llm: Stack) -> None:
    manager = {"kind": "tools", "calls": [{"name": "manager", "arguments": '{"prompt": "deeper"}'}]}
    llm.script(manager, manager, manager, manager, {"kind": "text", "chunks": ["gave up"]},
               {"kind": "text", "chunks": ["a"]}, {"kind": "text", "chunks": ["b"]}, {"kind": "text", "chunks": ["c"]})
    tab, _, frame = await run_prompt(llm, "manager", "recurse")
    assert frame["value"]["streams"][-1]["status"] == "finished"
    assert [m["text"] for m in by_step(frame["value"])][-1] == "c"
    deepest = llm.llm_requests()[4]["messages"]  # the third nested manager, told it cannot go deeper
    assert deepest[-1]["role"] == "tool" and "at most 3 deep" in deepest[-1]["content"]
    await tab.close()
