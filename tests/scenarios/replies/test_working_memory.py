"""Working memory through real processes: an agent keeps what it learns in one thread with its tool, a
later reply in another thread has it in its context, the user reads it live and rewrites it (an
agent's change made meanwhile is not lost), and another user's memory stays apart."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.scenarios.replies.helpers import new_thread, open_tab, reply_of, token, watch_args
from tests.support.stack import Stack
from tests.support.wsutil import Tab

pytestmark = pytest.mark.anyio


async def answered(tab: Tab, prompt: str, tag: str) -> dict[str, Any]:
    tid = await new_thread(tab)
    await tab.subscribe(tag, "messages.list", watch_args(tid))
    sent = await tab.mutate("messages.send", {"threadId": tid, "prompt": prompt, "agentName": "memo"})
    assert sent["ok"], sent
    def final(v: dict[str, Any]) -> Any:  # (a step that called tools comes first, without text)
        done = reply_of(v, 1, ("success",))
        return done if done is not None and done["text"] else None

    frame = await tab.wait_result(tag, lambda v: final(v) is not None, timeout=30)
    return final(frame["value"])  # type: ignore[no-any-return]


def memory_note(llm: Stack, request: int = -1) -> str:
    """The working memory the model was shown in a request (the last by default)."""
    notes = [m["content"] for m in llm.llm_requests()[request]["messages"]
             if m["role"] == "system" and "working memory" in str(m["content"])]
    assert len(notes) == 1, notes
    return str(notes[0])


async def test_what_an_agent_keeps_in_one_thread_is_known_in_the_next(llm: Stack) -> None:
    edit = {"op": "replace", "section": "Preferences", "content": "Drinks green tea, no sugar"}
    llm.script({"kind": "tools", "calls": [{"name": "update_working_memory", "arguments": json.dumps(edit)}]},
               {"kind": "text", "chunks": ["Noted."]})
    tab = await open_tab(llm.web, "wm-ana", "wm")
    await tab.subscribe("wm", "memory.working", {})
    first = await answered(tab, "I drink green tea without sugar", "a")
    assert first["text"] == "Noted." and "(empty)" in memory_note(llm, -2)
    assert "Drinks green tea" in memory_note(llm)  # the step after the tool's already sees it
    frame = await tab.wait_result("wm", lambda v: v["version"] == 1)
    assert frame["value"]["text"] == "## Preferences\nDrinks green tea, no sugar"
    assert [(r["by"], r["op"]) for r in frame["value"]["history"]] == [("agent:memo", "replace")]

    llm.script({"kind": "text", "chunks": ["Green tea."]})
    await answered(tab, "What do I drink?", "b")  # another thread
    assert "## Preferences\nDrinks green tea, no sugar" in memory_note(llm)

    async with httpx.AsyncClient(base_url=llm.webs[1], headers={"Authorization": f"Bearer {token('wm-ana')}"},
                                 timeout=10) as http:
        r = await http.put("/api/memory/working", json={"text": "## Preferences\nCoffee now", "expectedVersion": 1})
        assert r.status_code == 200 and r.json()["version"] == 2, r.text
        stale = await http.put("/api/memory/working", json={"text": "lost", "expectedVersion": 1})
        assert stale.status_code == 409 and stale.json()["code"] == "conflict"
        too_long = await http.put("/api/memory/working", json={"text": "x" * 8001})
        assert too_long.status_code == 400
        got = (await http.get("/api/memory/working", params={"history": "5"})).json()
        assert got["text"] == "## Preferences\nCoffee now" and [r["by"] for r in got["history"]] == [
            "user:wm-ana", "agent:memo"]
    await tab.wait_result("wm", lambda v: v["version"] == 2)  # live in the tab
    llm.script({"kind": "text", "chunks": ["Coffee."]})
    await answered(tab, "And now?", "c")
    assert "Coffee now" in memory_note(llm) and "green tea" not in memory_note(llm)

    other = await open_tab(llm.web, "wm-bob", "wm-bob")
    llm.script({"kind": "text", "chunks": ["Hello."]})
    await answered(other, "Hi", "d")
    assert "(empty)" in memory_note(llm)  # another user's memory is their own
    await other.ws.close()
    await tab.ws.close()
