"""An untitled thread named after its first exchange: one short model call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from threadline.shared.agents import Agent
from threadline.shared.llm import ChatRequest, Model
from threadline.shared.llm.base import whole_text
from threadline.shared.records import Usage


async def title_of(agent: Agent, model: Model, prompt: str, answer: str,
                   record: Callable[[Usage], Awaitable[None]]) -> str:
    """A title of a few words for the exchange (``record`` keeps the call's usage); "" when the
    model gave none."""
    request = ChatRequest(messages=[
        {"role": "system", "content": "Write a title of 2 to 6 words for the conversation below. "
                                      "Answer with the title only: no quotes, no punctuation at the end."},
        {"role": "user", "content": f"User: {prompt[:1500]}\n\nAssistant: {answer[:1500]}"},
    ], temperature=0.2, max_tokens=24, options=dict(agent.provider_options))
    return clean_title(await whole_text(model, request, record))


def clean_title(text: str) -> str:
    """A model's title answer as a title: its first line, without quotes or markup, at most 8 words."""
    line = next((x for x in text.strip().splitlines() if x.strip()), "")
    words = line.strip().strip("\"'\u201c\u201d\u2018\u2019*#`").strip().rstrip(".!").split()
    return " ".join(words[:8])[:80]
