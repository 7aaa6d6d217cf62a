"""A context within the agent's budget: the thread's summary in place of the messages it covers,
and the oldest messages folded into it (by the agent's model) when the rest is still too long,
instead of being silently cut."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from threadline.shared.agents import Agent
from threadline.shared.generation.sinks import Sink
from threadline.shared.llm import ChatRequest, Model
from threadline.shared.llm.base import whole_text
from threadline.shared.records import Message, TextPart, Usage

Record = Callable[[Usage], Awaitable[None]]  # keeps a summary call's usage


async def within_budget(agent: Agent, model: Model, sink: Sink, prompt: Message, context: list[Message],
                        record: Record) -> list[Message]:
    """``context`` with the thread's summary applied, within ``agent.context_budget_chars``.

    Messages up to ``summarizedThroughOrder`` (thread metadata) are replaced by the thread's
    summary; when the rest still exceeds the budget, the oldest of them are summarized into it.
    """
    budget = agent.context_budget_chars
    if budget is None:
        return context
    summary, stored_through = await sink.summary()
    through = stored_through
    kept = [m for m in context if m.role == "system" or m.order > through or m.order < 0]
    while _chars(kept) + len(summary) > budget:
        older = sorted({m.order for m in kept if 0 < m.order < prompt.order})
        if not older:
            break
        cut = older[0]
        folded = [m for m in kept if m.order == cut]
        summary = await _summarize(agent, model, summary, folded, record)
        through = max(through, cut)
        kept = [m for m in kept if m.order != cut]
    if through > stored_through:
        await sink.keep_summary(summary, through)
    if not summary:
        return kept
    note = f"Summary of the earlier conversation: {summary}"
    return [Message(message_id="", thread_id=sink.thread_id, role="system", text=note,
                    parts=[TextPart(text=note)]), *kept]


async def _summarize(agent: Agent, model: Model, summary: str, messages: list[Message], record: Record) -> str:
    transcript = "\n".join(f"{m.role}: {m.text}" for m in messages if m.text)
    request = ChatRequest(messages=[
        {"role": "system", "content": "Update the running summary of a conversation. Keep every fact "
                                      "that may matter later; answer with the summary only."},
        {"role": "user", "content": f"Summary so far: {summary or '(none)'}\n\nNew messages:\n{transcript}"},
    ], temperature=0, options=dict(agent.provider_options))
    return (await whole_text(model, request, record)).strip() or summary


def _chars(messages: list[Message]) -> int:
    return sum(len(m.text) for m in messages)
