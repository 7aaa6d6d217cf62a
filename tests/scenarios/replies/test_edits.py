"""Edit and branch through real web processes, workers and the scripted model: an edited message is
answered on a branch of its own while the reply it cut short stays on the old one, every tab sees the
versions and a switch, and the agent's context holds the active branch only."""

from __future__ import annotations

import httpx
import pytest

from tests.scenarios.replies.helpers import new_thread, open_tab, reply_of, token, watch_args
from tests.support.stack import Stack

pytestmark = pytest.mark.anyio

HANG = {"kind": "hang", "chunks": ["still ", "going "], "delay_ms": 10}


def shown(value: dict) -> list[tuple[int, str, str]]:  # type: ignore[type-arg]
    return [(m["order"], m["role"], m["text"]) for m in reversed(value["page"])]


def versions(value: dict) -> list[list[tuple[int, bool]]]:  # type: ignore[type-arg]
    return [[(v["order"], v["active"]) for v in f["versions"]] for f in value["forks"]]


def user_texts(request: dict) -> list[str]:  # type: ignore[type-arg]
    return [m["content"] for m in request["messages"] if m["role"] == "user" and isinstance(m["content"], str)]


async def test_an_edit_branches_the_thread_for_every_tab_and_the_agent_sees_its_branch(llm: Stack) -> None:
    llm.script({"kind": "text", "chunks": ["r1"]}, {"kind": "text", "chunks": ["r2"]}, HANG,
               {"kind": "text", "chunks": ["r2b"]})
    a = await open_tab(llm.webs[0], "edna", "a")
    b = await open_tab(llm.webs[1], "edna", "b")
    tid = await new_thread(a)
    for tab in (a, b):
        await tab.subscribe("m", "messages.list", watch_args(tid))
        await tab.subscribe("br", "messages.branches", {"threadId": tid})
    for n, prompt in ((1, "one"), (2, "two")):
        assert (await a.mutate("messages.send", {"threadId": tid, "prompt": prompt, "agentName": "echo"}))["ok"]
        await a.wait_result("m", lambda v, n=n: reply_of(v, n, ("success",)) is not None, timeout=60)
    frame = await a.wait_result("m", lambda v: any(m["text"] == "two" for m in v["page"]))
    two = next(m for m in frame["value"]["page"] if m["text"] == "two")
    assert (await a.mutate("messages.send", {"threadId": tid, "prompt": "three", "agentName": "echo"}))["ok"]
    await a.wait(lambda f: f["type"] == "delta" and "going" in str(f["parts"]), timeout=60)
    heard = len(llm.llm_requests())
    headers = {"Authorization": f"Bearer {token('edna')}", "Idempotency-Key": "edit-two"}
    async with httpx.AsyncClient(base_url=llm.webs[1], headers=headers, timeout=30) as http:
        r = await http.post(f"/api/messages/{two['messageId']}/edit", json={"prompt": "two, better", "agentName": "echo"})
        assert r.status_code == 201, r.text
        assert r.json() == {"messageId": r.json()["messageId"], "order": 4, "edits": two["messageId"]}
        again = await http.post(f"/api/messages/{two['messageId']}/edit", json={"prompt": "two, better", "agentName": "echo"})
        assert again.json() == r.json()  # (a resend: one new version, one reply)
    want = [(1, "user", "one"), (1, "assistant", "r1"), (4, "user", "two, better"), (4, "assistant", "r2b")]
    for tab in (a, b):
        await tab.wait_result("m", lambda v: shown(v) == want, timeout=60)
        await tab.wait_result("br", lambda v: versions(v) == [[(2, False), (4, True)]])
    # the edited prompt's reply saw the branch it is on: not the old version, not what followed it
    asked = [q for q in llm.llm_requests()[heard:] if "two, better" in user_texts(q)]
    assert len(asked) == 1 and user_texts(asked[0]) == ["one", "two, better"]
    # the old version comes back whole, with the reply the edit cut short ended on its branch
    switched = await b.mutate("messages.switchBranch", {"threadId": tid, "order": 2})
    assert switched["ok"] and switched["value"]["lastOrder"] == 3, switched
    for tab in (a, b):
        frame = await tab.wait(lambda f: f["type"] == "result" and f["id"] == "m" and f["version"] >= switched["version"]
                               and reply_of(f["value"], 3, ("failed",)) is not None, timeout=60)
        assert [t for _, _, t in shown(frame["value"])][:5] == ["one", "r1", "two", "r2", "three"]
        assert "going" in reply_of(frame["value"], 3, ("failed",))["text"]
        await tab.wait_result("br", lambda v: versions(v) == [[(2, True), (4, False)]])
    assert len([q for q in llm.llm_requests()[heard:] if "two, better" in user_texts(q)]) == 1
    await a.close()
    await b.close()


async def test_who_may_edit_and_what_cannot_be_edited(llm: Stack) -> None:
    llm.script({"kind": "text", "chunks": ["fine"]})
    owner = await open_tab(llm.webs[0], "ezra", "o")
    tid = await new_thread(owner)
    await owner.subscribe("m", "messages.list", watch_args(tid))
    sent = await owner.mutate("messages.send", {"threadId": tid, "prompt": "hello", "agentName": "echo"})
    frame = await owner.wait_result("m", lambda v: reply_of(v, 1, ("success",)) is not None, timeout=60)
    answer = reply_of(frame["value"], 1)
    assert (await owner.mutate("threads.members.add", {"threadId": tid, "userId": "eli", "role": "reader"}))["ok"]
    assert (await owner.mutate("threads.members.add", {"threadId": tid, "userId": "eve", "role": "writer"}))["ok"]
    mid = sent["value"]["messageId"]
    for user, code in (("eli", 403), ("eve", 403), ("emil", 404)):  # a reader; a writer, not theirs; a stranger
        async with httpx.AsyncClient(base_url=llm.webs[1], headers={"Authorization": f"Bearer {token(user)}"}) as http:
            r = await http.post(f"/api/messages/{mid}/edit", json={"prompt": "mine now", "generate": False})
            assert r.status_code == code, (user, r.text)
    reader = await open_tab(llm.webs[1], "eli", "r")
    refused = await reader.mutate("messages.switchBranch", {"threadId": tid, "order": 1})
    assert refused["error"]["code"] == "forbidden"
    bad = await owner.mutate("messages.edit", {"messageId": answer["messageId"], "prompt": "x", "generate": False})
    assert bad["error"]["code"] == "bad_request"
    edited = await owner.mutate("messages.edit", {"messageId": mid, "prompt": "hello again", "generate": False})
    assert edited["ok"], edited
    stale = await owner.mutate("messages.edit", {"messageId": mid, "prompt": "hello thrice", "generate": False})
    assert stale["error"]["code"] == "conflict"
    again = await owner.mutate("messages.regenerate", {"messageId": mid, "agentName": "echo"})
    assert again["error"]["code"] == "conflict"  # (its answer would land where no one sees it)
    await owner.wait_result("m", lambda v: shown(v) == [(2, "user", "hello again")])
    await owner.close()
    await reader.close()


async def test_an_edit_interrupts_the_reply_even_of_an_agent_that_refuses_double_texts(llm: Stack) -> None:
    """An agent with double_texting="reject" refuses a send while it answers; an edit leaves that
    reply's branch, so it is aborted and the new version answered."""
    llm.script(HANG, {"kind": "text", "chunks": ["better"]})
    tab = await open_tab(llm.webs[0], "etta", "t")
    tid = await new_thread(tab)
    await tab.subscribe("m", "messages.list", watch_args(tid))
    sent = await tab.mutate("messages.send", {"threadId": tid, "prompt": "slow one", "agentName": "strict"})
    await tab.wait(lambda f: f["type"] == "delta" and "going" in str(f["parts"]), timeout=60)
    refused = await tab.mutate("messages.send", {"threadId": tid, "prompt": "meanwhile", "agentName": "strict"})
    assert refused["error"]["code"] == "conflict"
    edited = await tab.mutate("messages.edit", {"messageId": sent["value"]["messageId"], "prompt": "quick one",
                                                "agentName": "strict"})
    assert edited["ok"], edited
    await tab.wait_result("m", lambda v: shown(v) == [(2, "user", "quick one"), (2, "assistant", "better")], timeout=60)
    await tab.close()
