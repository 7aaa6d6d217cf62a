"""One Generation, two sinks: in memory it writes nothing; in the store it saves the pending
reply, streams deltas, runs tools and ends the stream with the final message."""

from __future__ import annotations

import msgspec
import pytest

from threadline.shared.agents import Agent, ToolContext, tool
from threadline.shared.config import load_settings
from threadline.shared.generation.runner import Generation
from threadline.shared.generation.sinks import MemorySink, StoreSink
from threadline.shared.llm.mock import MockModel
from threadline.shared.records import Message, Part, TextPart
from threadline.shared.runtime import Runtime
from threadline.shared.threads import Store

pytestmark = pytest.mark.anyio
SETTINGS = load_settings({})


class Weather(msgspec.Struct):
    city: str


@tool("The weather in a city")
def weather(ctx: ToolContext, args: Weather) -> str:
    return f"sunny in {args.city}"


async def prompt_in(store: Store, text: str) -> Message:
    t = await store.threads.create("alice")
    _, (m,) = await store.messages.save(t.thread_id, "alice", [Message(message_id="", thread_id="", text=text,
                                                                        parts=[TextPart(text=text)])])
    return m


async def test_in_memory_nothing_is_written(store: Store) -> None:
    prompt = await prompt_in(store, "hello")
    seen: list[list[Part]] = []
    sink = MemorySink(store, prompt.thread_id, on_delta=seen.append)
    unsaved = Message(message_id="", thread_id=prompt.thread_id, user_id="alice", text="just asking",
                      parts=[TextPart(text="just asking")])
    result = await Generation(Runtime(SETTINGS, redis=store.redis), Agent(name="a", throttle_ms=0), unsaved, sink,
                              model=MockModel(words=5, delay_ms=0)).run()
    assert result.outcome == "finished" and result.text.startswith("[mock]") and result.stream_id == ""
    assert "".join(p.text for d in seen for p in d if isinstance(p, TextPart)) == result.text
    _, page = await store.messages.list(prompt.thread_id, "alice")
    assert [m.message_id for m in page.page] == [prompt.message_id]  # nothing added


async def test_in_the_store_the_reply_and_its_tool_steps_are_saved(store: Store) -> None:
    prompt = await prompt_in(store, 'tool:weather {"city": "Oslo"}')
    agent = Agent(name="a", tools=[weather], max_steps=3, throttle_ms=0)
    result = await Generation(Runtime(SETTINGS, redis=store.redis), agent, prompt, StoreSink(store, prompt.thread_id),
                              model=MockModel(words=3, delay_ms=0)).run()
    assert result.outcome == "finished"
    _, page = await store.messages.list(prompt.thread_id, "alice")
    roles = [(m.role, m.status) for m in reversed(page.page)]
    assert roles == [("user", "success"), ("assistant", "success"), ("tool", "success"), ("assistant", "success")]
    tool_message = next(m for m in page.page if m.role == "tool")
    assert "sunny in Oslo" in msgspec.json.encode(tool_message.parts).decode()
    (stream,) = [s for s in await store.streams.list(prompt.thread_id) if s.stream_id == result.stream_id]
    assert stream.status == "finished" and stream.seq >= 2
