"""Two tabs watching one thread see the same gapless deltas, equal to the saved reply."""

from __future__ import annotations

import pytest

from tests.scenarios.replies.helpers import (
    assert_gapless,
    delta_text,
    new_thread,
    open_tab,
    reply_of,
    watch_args,
)
from tests.support.stack import Stack
from tests.support.wsutil import Tab

pytestmark = pytest.mark.anyio

WORDS = [f"word{i} " for i in range(30)]


async def test_two_tabs_on_two_processes_see_the_same_gapless_deltas(llm: Stack) -> None:
    llm.script({"kind": "text", "chunks": WORDS, "delay_ms": 15})
    a = await open_tab(llm.webs[0], client_id="a")
    b = await open_tab(llm.webs[1], client_id="b")
    tid = await new_thread(a)
    for tab in (a, b):
        await tab.subscribe("m", "messages.list", watch_args(tid))
    sent = await a.mutate("messages.send", {"threadId": tid, "prompt": "hello", "agentName": "echo"})
    assert sent["ok"], sent
    finals = []
    for tab in (a, b):
        frame = await tab.wait_result("m", lambda v: reply_of(v, 1, ("success",)) is not None)
        finals.append(reply_of(frame["value"], 1))
        stream = frame["value"]["streams"][0]
        assert stream["status"] == "finished"
        deltas = tab.deltas("m", stream["streamId"])
        assert_gapless(deltas)
        assert delta_text(deltas) == "".join(WORDS) == finals[-1]["text"]
        assert stream["text"] == finals[-1]["text"]
    assert finals[0] == finals[1]
    assert finals[0]["stepOrder"] == 1 and finals[0]["agentName"] == "echo"
    assert finals[0]["usage"]["totalTokens"] > 0 and finals[0]["model"] == "fake"
    await a.close()
    await b.close()


async def reply_under_way(llm: Stack, seq: int) -> tuple[Tab, str, dict]:  # type: ignore[type-arg]
    """A tab watching a thread whose 30-word reply has streamed at least ``seq`` deltas."""
    llm.script({"kind": "text", "chunks": WORDS, "delay_ms": 30})
    tab = await open_tab(llm.web, client_id="a")
    tid = await new_thread(tab)
    await tab.subscribe("m", "messages.list", watch_args(tid))
    await tab.mutate("messages.send", {"threadId": tid, "prompt": "go", "agentName": "echo"})
    delta = await tab.wait(lambda f: f["type"] == "delta" and f["seq"] >= seq)
    return tab, tid, delta


async def test_a_late_joiner_gets_the_text_so_far_then_live_deltas(llm: Stack) -> None:
    a, tid, first_delta = await reply_under_way(llm, 3)
    late = await open_tab(llm.webs[1], client_id="late")
    first = await late.subscribe("m", "messages.list", watch_args(tid))
    (stream,) = first["value"]["streams"]
    assert stream["streamId"] == first_delta["streamId"] and stream["seq"] >= 3
    frame = await late.wait_result("m", lambda v: reply_of(v, 1, ("success",)) is not None)
    deltas = late.deltas("m", stream["streamId"])
    assert_gapless(deltas, start=stream["seq"] + 1)
    assert stream["text"] + delta_text(deltas) == reply_of(frame["value"], 1)["text"]
    await a.close()
    await late.close()


async def test_resume_with_stream_cursors_replays_then_continues_live(llm: Stack) -> None:
    a, tid, delta = await reply_under_way(llm, 4)
    sid = delta["streamId"]
    seen = a.deltas("m", sid)[:4]
    await a.close()  # the tab goes away (a reload) having seen seq 1..4
    again = await open_tab(llm.webs[1], client_id="a")
    await again.subscribe("m", "messages.list", watch_args(tid, streamCursors={sid: 4}))
    frame = await again.wait_result("m", lambda v: reply_of(v, 1, ("success",)) is not None)
    rest = again.deltas("m", sid)
    assert_gapless(rest, start=5)
    assert delta_text(seen) + delta_text(rest) == reply_of(frame["value"], 1)["text"] == "".join(WORDS)
    await again.close()


async def test_sse_endpoint_replays_after_last_event_id(llm: Stack) -> None:
    import httpx

    from tests.scenarios.replies.helpers import token

    llm.script({"kind": "text", "chunks": WORDS[:10]})
    a = await open_tab(llm.web, client_id="a")
    tid = await new_thread(a)
    await a.subscribe("m", "messages.list", watch_args(tid))
    await a.mutate("messages.send", {"threadId": tid, "prompt": "go", "agentName": "echo"})
    frame = await a.wait_result("m", lambda v: reply_of(v, 1, ("success",)) is not None)
    stream = frame["value"]["streams"][0]
    headers = {"Authorization": f"Bearer {token('alice')}", "Last-Event-ID": "2"}
    async with httpx.AsyncClient(base_url=llm.web, timeout=10) as http:
        body = (await http.get(f"/api/streams/{stream['streamId']}", headers=headers)).text
        other = await http.get(f"/api/streams/{stream['streamId']}",
                               headers={"Authorization": f"Bearer {token('bob')}"})
    ids = [int(line[4:]) for line in body.splitlines() if line.startswith("id: ")]
    assert ids == list(range(3, stream["seq"] + 1))
    assert 'event: end\ndata: {"status":"finished"' in body
    assert other.status_code == 404
    await a.close()


async def test_the_mock_model_streams_a_deterministic_labelled_reply(llm: Stack) -> None:
    a = await open_tab(llm.web, client_id="a")
    tid = await new_thread(a)
    await a.subscribe("m", "messages.list", watch_args(tid))
    await a.mutate("messages.send", {"threadId": tid, "prompt": "hi there", "agentName": "mock"})
    frame = await a.wait_result("m", lambda v: reply_of(v, 1, ("success",)) is not None)
    reply = reply_of(frame["value"], 1)
    assert reply["text"].startswith("[mock] ") and len(reply["text"].split()) == 40
    assert reply["model"] == "mock" and reply["provider"] == "mock"
    assert llm.llm_requests() == []  # the scripted endpoint was never called
    await a.close()
