"""The Python API for server-side code, in-process against a real Valkey with the mock model."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from tests.support.store import settings_for
from threadline import Agent, Threadline
from threadline.example import add, assistant
from threadline.shared.agents.request import RunContext
from threadline.shared.errors import BadRequest
from threadline.shared.records import Message

pytestmark = pytest.mark.anyio

MOCK = Agent(name="m", model="mock", throttle_ms=5)


class Trip(msgspec.Struct):
    city: str
    days: int


@pytest.fixture
async def tl(redis_url: str, tmp_path: Path) -> AsyncIterator[Threadline]:
    settings = settings_for(redis_url, MOCK_LLM_DELAY_MS="1", MOCK_LLM_WORDS="12", DATA_DIR=str(tmp_path))
    async with Threadline(settings) as api:
        yield api


async def test_generate_text_saves_prompt_and_reply(tl: Threadline) -> None:
    thread = await tl.create_thread("alice", title="api")
    result = await thread.generate_text(MOCK, "hello there")
    assert result.outcome == "finished" and result.text.startswith("[mock]")
    page = await thread.messages()
    assert [(m.role, m.order, m.step_order, m.status) for m in page.page] == [
        ("assistant", 1, 1, "success"), ("user", 1, 0, "success")]
    assert page.page[0].text == result.text and result.usage.total_tokens > 0


async def test_save_messages_none_stores_nothing(tl: Threadline) -> None:
    thread = await tl.create_thread("alice")
    result = await thread.generate_text(dataclasses.replace(MOCK, save_messages="none"), "quiet")
    assert result.text.startswith("[mock]") and result.stream_id == ""
    assert (await thread.messages()).page == []


async def test_stream_text_yields_what_is_saved(tl: Threadline) -> None:
    thread = await tl.create_thread("alice")
    stream = thread.stream_text(MOCK, "stream please")
    pieces = [piece async for piece in stream]
    assert len(pieces) >= 2
    assert stream.result is not None and "".join(pieces) == stream.result.text
    assert (await thread.messages()).page[0].text == stream.result.text


async def test_generate_and_stream_objects(tl: Threadline) -> None:
    thread = await tl.create_thread("alice")
    obj = await thread.generate_object(MOCK, "plan", output=Trip)
    assert obj == {"city": "mock", "days": 1}
    stream = thread.stream_object(MOCK, "plan again", output=Trip)
    partials = [p async for p in stream]
    assert partials[-1] == stream.result.object == {"city": "mock", "days": 1}  # type: ignore[union-attr]


async def test_a_tool_loop_in_process(tl: Threadline) -> None:
    thread = await tl.create_thread("alice")
    agent = Agent(name="calc", model="mock", tools=[add], max_steps=3, throttle_ms=5)
    result = await thread.generate_text(agent, 'tool:add {"a": 2, "b": 3}')
    page = await thread.messages()
    roles = [(m.role, m.step_order) for m in reversed(page.page)]
    assert roles == [("user", 0), ("assistant", 1), ("tool", 2), ("assistant", 3)]
    assert page.page[1].parts[0].result == 5.0  # type: ignore[union-attr]
    assert result.outcome == "finished"


async def test_human_agent_reply_and_context(tl: Threadline) -> None:
    thread = await tl.create_thread("alice")
    prompt = await thread.save_message("I need a person")
    human = await thread.save_message("A person here.", role="assistant", agent_name="support", order=prompt.order)
    assert (human.order, human.step_order, human.agent_name) == (1, 1, "support")
    later = await thread.save_message("thanks")
    context = await thread.fetch_context_messages(assistant, later.message_id)
    assert [m.text for m in context] == ["I need a person", "A person here.", "thanks"]
    again = await tl.continue_thread(thread.thread_id, "alice")
    assert again.thread.title == thread.thread.title


async def test_files_in_messages(tl: Threadline) -> None:
    from threadline import ImagePart, TextPart

    png = b"\x89PNG\r\n\x1a\n" + bytes(40)
    record = await tl.upload_file("alice", "dot.png", png)
    assert (record.media_type, record.name, record.refs) == ("image/png", "dot.png", 0)
    thread = await tl.create_thread("alice")
    saved = await thread.save_message(parts=[TextPart(text="look"), ImagePart(file_id=record.file_id)])
    assert saved.parts[1] == ImagePart(file_id=record.file_id, mime_type="image/png", filename="dot.png")
    assert (await tl.file(record.file_id, "alice")).refs == 1
    assert await tl.read_file(record.file_id, "alice") == png
    result = await thread.generate_text(MOCK, prompt_message_id=saved.message_id)
    assert result.outcome == "finished"


async def test_rate_limits_count_when_asked(redis_url: str, tmp_path: Path) -> None:
    from threadline.shared.errors import RateLimited

    settings = settings_for(redis_url, MOCK_LLM_DELAY_MS="1", MOCK_LLM_WORDS="3", DATA_DIR=str(tmp_path),
                            RATE_LIMIT_SENDS_PER_MINUTE="60", RATE_LIMIT_BURST="1")
    async with Threadline(settings) as api:
        thread = await api.create_thread("limited")
        await thread.generate_text(MOCK, "one", rate_limited=True)
        with pytest.raises(RateLimited) as refused:
            await thread.generate_text(MOCK, "two", rate_limited=True)
        assert refused.value.retry_after_ms and refused.value.retry_after_ms > 0
        assert (await thread.generate_text(MOCK, "three")).outcome == "finished"  # server code, not asked
        assert len((await thread.messages()).page) == 4  # "two" was never saved


async def test_a_call_carries_its_context_to_the_instructions_and_the_context_handler(tl: Threadline) -> None:
    class Doc(msgspec.Struct):
        name: str

    seen: list[tuple[object, ...]] = []

    def instructions(run: RunContext) -> str:
        seen.append(("instructions", run.context, run.caller.user_id))
        return f"Edit {run.context.name}."

    async def handler(run: RunContext, messages: list[Message]) -> list[Message]:
        seen.append(("handler", run.context.name, [m.text for m in messages]))
        return messages

    agent = dataclasses.replace(MOCK, name="doc", instructions=instructions, context_type=Doc, context_handler=handler)
    thread = await tl.create_thread("alice")
    result = await thread.generate_text(agent, "hi", context=Doc(name="a.md"))
    assert result.outcome == "finished"
    assert seen == [("instructions", Doc(name="a.md"), "alice"), ("handler", "a.md", ["hi"])]
    with pytest.raises(BadRequest, match="does not fit"):
        await thread.generate_text(agent, "again", context={"name": 3})
    assert len((await thread.messages()).page) == 2  # the refused call saved nothing


async def test_a_call_outside_any_thread_saves_nothing_and_counts_for_its_user(tl: Threadline) -> None:
    result = await tl.generate_text(MOCK, "classify this", user_id="carol")
    assert result.outcome == "finished" and result.text.startswith("[mock]") and result.stream_id == ""
    assert (await tl.store.threads.list("carol", num_items=10))[1].page == []
    usage = await tl.usage("carol")
    assert usage.by_agent["m"].calls == 1
    trip = await tl.generate_object(MOCK, "Lisbon for two days", Trip, user_id="carol")
    assert trip == {"city": "mock", "days": 1}  # validated against Trip, as JSON values
