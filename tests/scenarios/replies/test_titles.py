"""Thread titles: an agent with auto_title names an untitled thread after its first reply (one short
model call, counted in the usage ledger), live in every tab; a named thread keeps its name."""

from __future__ import annotations

import pytest

from tests.scenarios.replies.helpers import open_tab
from tests.support.stack import Stack

pytestmark = pytest.mark.anyio


async def test_an_untitled_thread_is_named_after_its_first_reply_in_every_tab(llm: Stack) -> None:
    llm.script({"kind": "text", "chunks": ["Sunny ", "all week."]},
               {"kind": "text", "chunks": ['"Oslo weather ', 'this week."\n', "extra line"]})
    a = await open_tab(llm.web, "titler", client_id="a")
    b = await open_tab(llm.webs[1], "titler", client_id="b")
    created = await a.mutate("threads.create", {"title": "New chat"})
    tid = created["value"]["threadId"]
    await b.subscribe("threads", "threads.list", {})
    await a.mutate("messages.send", {"threadId": tid, "prompt": "weather in Oslo?", "agentName": "titled"})
    frame = await b.wait_result("threads", lambda v: v["page"] and v["page"][0]["title"] != "New chat")
    assert frame["value"]["page"][0]["title"] == "Oslo weather this week"
    title_call = llm.llm_requests()[-1]
    assert title_call["max_tokens"] == 24 and "weather in Oslo?" in title_call["messages"][-1]["content"]
    assert "Sunny all week." in title_call["messages"][-1]["content"]
    usage = await a.subscribe("u", "usage.get", {})
    await a.wait_result("u", lambda v: v["byKind"].get("title", {}).get("calls") == 1)
    assert usage["type"] == "result"
    # the next exchange does not rename it
    llm.script({"kind": "text", "chunks": ["Still sunny."]})
    await a.mutate("messages.send", {"threadId": tid, "prompt": "and tomorrow?", "agentName": "titled"})
    await a.subscribe("m", "messages.list", {"threadId": tid})
    await a.wait_result("m", lambda v: any(m["text"] == "Still sunny." for m in v["page"]))
    assert sum(1 for r in llm.llm_requests() if r.get("max_tokens") == 24) == 1
    await a.close()
    await b.close()


async def test_a_named_thread_keeps_its_name(llm: Stack) -> None:
    tab = await open_tab(llm.web, "namer", client_id="n")
    tid = (await tab.mutate("threads.create", {"title": "Trip to Rome"}))["value"]["threadId"]
    await tab.subscribe("m", "messages.list", {"threadId": tid})
    await tab.mutate("messages.send", {"threadId": tid, "prompt": "hi", "agentName": "titled"})
    await tab.wait_result("m", lambda v: any(m["role"] == "assistant" and m["status"] == "success" for m in v["page"]))
    thread = await tab.subscribe("t", "threads.get", {"threadId": tid})
    assert thread["value"]["title"] == "Trip to Rome"
    assert not any(r.get("max_tokens") == 24 for r in llm.llm_requests())
    await tab.close()
