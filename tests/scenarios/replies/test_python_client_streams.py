"""The Python client's first-class streams: results and deltas in order, resumed across a reconnect."""

from __future__ import annotations

import pytest

from tests.scenarios.replies.helpers import reply_of, token
from tests.support.stack import Stack
from threadline import Client, Delta, Result

pytestmark = pytest.mark.anyio


async def test_events_yield_every_delta_once_in_order_across_a_dropped_connection(llm: Stack) -> None:
    words = [f"w{i} " for i in range(24)]
    llm.script({"kind": "text", "chunks": words, "delay_ms": 40})
    async with Client(llm.web.replace("http", "ws") + "/ws", token("alice")) as client:
        tid = (await client.mutate("threads.create", {}))["threadId"]
        sub = client.subscribe("messages.list", {"threadId": tid, "streams": True})
        events = sub.events()
        await client.mutate("messages.send", {"threadId": tid, "prompt": "stream please", "agentName": "echo"})
        deltas: list[Delta] = []
        dropped = False
        async for event in events:
            if isinstance(event, Delta):
                deltas.append(event)
                if len(deltas) == 3 and not dropped:
                    dropped = True
                    await client.drop_connection()  # the client reconnects and resubscribes with its cursors
            elif isinstance(event, Result) and reply_of(event.value, 1, ("success",)) is not None:
                final = reply_of(event.value, 1, ("success",))
                break
        assert dropped and client.connects >= 2
        assert [d.seq for d in deltas] == list(range(1, len(deltas) + 1))  # no gap, no repeat
        assert "".join(d.text for d in deltas) == final["text"] == "".join(words)
        await sub.close()
