"""The built-in mock model keeps to a request's max_tokens as a model server does."""

from __future__ import annotations

import pytest

from threadline.shared.llm.base import ChatRequest, Event, Finish, TextDelta
from threadline.shared.llm.mock import MockModel

pytestmark = pytest.mark.anyio


async def events(request: ChatRequest) -> list[Event]:
    return [e async for e in MockModel(words=40, delay_ms=0).stream(request)]


async def test_max_tokens_cuts_the_answer_short_and_says_so() -> None:
    got = await events(ChatRequest(messages=[{"role": "user", "content": "a title"}], max_tokens=5))
    assert len([e for e in got if isinstance(e, TextDelta)]) == 5
    finish = got[-1]
    assert isinstance(finish, Finish) and finish.reason == "length"
    assert finish.usage is not None and finish.usage.completion_tokens == 5


async def test_without_max_tokens_it_streams_all_its_words() -> None:
    got = await events(ChatRequest(messages=[{"role": "user", "content": "hello"}]))
    assert len([e for e in got if isinstance(e, TextDelta)]) == 40
    assert isinstance(got[-1], Finish) and got[-1].reason == "stop"
