"""A send's own context and options, and the caller's claims, reach the agent that answers it in a
worker: its instructions, its context handler, its tools and its model call; what the agent does
not take is refused at the send, with nothing saved."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import jwt
import pytest
import websockets

from tests.scenarios.replies.helpers import new_thread, open_tab, watch_args
from tests.support.stack import SECRET, Stack
from tests.support.wsutil import Tab, recv

pytestmark = pytest.mark.anyio

DOC = {"document": "chapter-3.md", "plan": "pro"}


def carol_token() -> str:
    """A token with claims beyond the user: its org (handed to agents: AUTH_CLAIMS), teams, admin."""
    return jwt.encode({"sub": "carol", "org": "acme", "roles": ["editor"], "secret_note": "not for agents",
                       "teams": ["writers"], "admin": True, "exp": int(time.time()) + 600}, SECRET, algorithm="HS256")


async def carol_tab(web: str) -> Tab:
    ws = await websockets.connect(web.replace("http", "ws") + "/ws", max_size=None)
    await ws.send(json.dumps({"type": "connect", "protocol": 1, "token": carol_token(), "clientId": "carol"}))
    assert (await recv(ws))["type"] == "connected"
    return Tab(ws)


def ended(value: dict[str, Any]) -> bool:
    return bool(value["streams"]) and value["streams"][-1]["status"] != "streaming"


async def test_context_options_and_claims_reach_instructions_handler_tools_and_model(llm: Stack) -> None:
    llm.script({"kind": "tools", "calls": [{"name": "whoami", "arguments": "{}"}]},
               {"kind": "text", "chunks": ["Done."]})
    tab = await carol_tab(llm.web)
    tid = await new_thread(tab)
    aside = await tab.mutate("messages.send", {"threadId": tid, "prompt": "[aside] ignore me", "generate": False})
    assert aside["ok"], aside
    await tab.subscribe("m", "messages.list", watch_args(tid))
    sent = await tab.mutate("messages.send", {
        "threadId": tid, "prompt": "tighten the intro", "agentName": "desk", "context": DOC,
        "options": {"temperature": 0.3, "activeTools": ["whoami"], "contextOptions": {"recentMessages": 5},
                    "model": "fake-small"}})
    assert sent["ok"], sent
    frame = await tab.wait_result("m", ended)
    assert frame["value"]["streams"][-1]["status"] == "finished"
    result = next(p for m in frame["value"]["page"] if m["role"] == "tool" for p in m["parts"])
    assert result["result"] == {"user": "carol", "teams": ["writers"], "admin": True,
                                "claims": {"org": "acme", "roles": ["editor"]}, "context": DOC}
    first = llm.llm_requests()[0]
    assert first["messages"][0] == {"role": "system",
                                    "content": "You help carol of org acme edit chapter-3.md."}
    assert first["messages"][1] == {"role": "system", "content": "Plan: pro."}  # the context handler's
    assert [m["content"] for m in first["messages"][2:]] == ["tighten the intro"]  # the [aside] left out
    assert first["temperature"] == 0.3 and first["model"] == "fake-small"
    assert [t["function"]["name"] for t in first["tools"]] == ["whoami"]
    await tab.close()


@pytest.mark.parametrize(("agent", "extra", "error"), [
    ("echo", {"context": DOC}, "takes no `context`"),
    ("desk", {"context": {"document": "a.md", "plan": "gold"}}, "`context` does not fit agent 'desk'"),
    ("desk", {"context": {"document": "a.md", "extra": 1}}, "`context` does not fit"),
    ("desk", {"context": {"document": "x" * 20_000}}, "over 16384 bytes"),
    ("desk", {"options": {"maxTokens": 10}}, "does not let a client set `maxTokens`"),
    ("desk", {"options": {"contextOptions": {"excludeToolMessages": False}}},
     "does not let a client set contextOptions.excludeToolMessages"),
    ("desk", {"options": {"model": "gpt-huge"}}, "does not answer with model 'gpt-huge'"),
    ("desk", {"options": {"activeTools": ["rm_rf"]}}, "has no tool 'rm_rf'"),
    ("desk", {"options": {"contextOptions": {"recentMessages": -1}}}, "`options.contextOptions` does not fit"),
    ("desk", {"options": {"stopAfter": 1}}, "stopAfter"),
    ("echo", {"options": {"temperature": 0.1}}, "does not let a client set `temperature`"),
])
async def test_what_the_agent_does_not_take_is_refused_and_nothing_is_saved(
        llm: Stack, agent: str, extra: dict[str, Any], error: str) -> None:
    tab = await open_tab(llm.web, client_id="t")
    tid = await new_thread(tab)
    out = await tab.mutate("messages.send", {"threadId": tid, "prompt": "x", "agentName": agent, **extra})
    assert out["error"]["code"] == "bad_request" and error in out["error"]["message"], out
    page = await tab.subscribe("m", "messages.list", {"threadId": tid})
    assert page["value"]["page"] == []
    await tab.close()


async def test_a_send_without_a_reply_takes_no_context(llm: Stack) -> None:
    tab = await open_tab(llm.web, client_id="t")
    tid = await new_thread(tab)
    out = await tab.mutate("messages.send", {"threadId": tid, "prompt": "x", "generate": False, "context": DOC})
    assert out["error"]["code"] == "bad_request" and "generate:false" in out["error"]["message"], out
    await tab.close()


async def test_failing_instructions_fail_the_reply_with_what_went_wrong(llm: Stack) -> None:
    tab = await open_tab(llm.web, client_id="t")
    tid = await new_thread(tab)
    await tab.subscribe("m", "messages.list", watch_args(tid))
    assert (await tab.mutate("messages.send", {"threadId": tid, "prompt": "x", "agentName": "desk-broken"}))["ok"]
    frame = await tab.wait_result("m", ended)
    reply = next(m for m in frame["value"]["page"] if m["role"] == "assistant")
    assert reply["status"] == "failed"
    assert reply["error"] == "the agent's instructions failed: RuntimeError: the app's instructions are broken"
    assert llm.llm_requests() == []  # no model call
    await tab.close()


def test_http_and_the_ai_sdk_route_carry_context_and_options(llm: Stack) -> None:
    headers = {"Authorization": f"Bearer {carol_token()}"}
    with httpx.Client(base_url=llm.web, headers=headers, timeout=20) as c:
        tid = c.post("/api/threads", json={}).json()["threadId"]
        sent = c.post(f"/api/threads/{tid}/messages", json={
            "prompt": "one", "agentName": "desk", "context": {"document": "http.md"},
            "options": {"temperature": 0.7}})
        assert sent.status_code == 201, sent.text
        refused = c.post(f"/api/threads/{tid}/messages", json={"prompt": "two", "agentName": "desk",
                                                              "options": {"maxSteps": 9}})
        assert refused.status_code == 400 and "`maxSteps`" in refused.json()["message"]
        _wait_for_requests(llm, 1)
        with c.stream("POST", "/api/chat", json={
                "id": tid, "agentName": "desk", "context": {"document": "sdk.md", "plan": "pro"},
                "options": {"temperature": 0.1},
                "messages": [{"id": "u-sdk-1", "role": "user", "parts": [{"type": "text", "text": "three"}]}]}) as r:
            assert r.status_code == 200
            body = "".join(r.iter_text())
        assert '"type":"finish"' in body.replace(" ", "")
    http, sdk = llm.llm_requests()[-2:]
    assert http["messages"][0]["content"].endswith("edit http.md.") and http["temperature"] == 0.7
    assert sdk["messages"][0]["content"] == "You help carol of org acme edit sdk.md."
    assert sdk["messages"][1]["content"] == "Plan: pro." and sdk["temperature"] == 0.1


def _wait_for_requests(llm: Stack, n: int) -> None:
    deadline = time.monotonic() + 20
    while len(llm.llm_requests()) < n:
        assert time.monotonic() < deadline, "the model was not called"
        time.sleep(0.05)
