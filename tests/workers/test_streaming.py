"""Two tabs watching one thread see the same gapless deltas, equal to the saved reply."""

from __future__ import annotations

import pytest

from tests.support.stack import Stack
from tests.workers.helpers import assert_gapless, delta_text, new_thread, open_tab, reply_of, watch_args

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
