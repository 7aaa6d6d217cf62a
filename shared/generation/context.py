"""The context a model sees: instructions, recent messages, the prompt's own order."""

from __future__ import annotations

import json
from typing import Any

from shared.agents import Agent, ContextOptions
from shared.records import (
    Message,
    ObjectPart,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)
from shared.store import Store
from shared.store.messages import STEP_SPAN


async def fetch_context_messages(
    store: Store, thread_id: str, prompt: Message, options: ContextOptions
) -> list[Message]:
    """Recent messages up to and including the prompt's order, oldest first.

    Only messages before the prompt's order count (so regenerating an old reply
    works), plus what the prompt's order already holds (earlier steps of this
    reply). Tool messages of earlier orders are left out when the options say so;
    pending (in-flight) replies never count.
    """
    cursor = str((prompt.order + 1) * STEP_SPAN)
    found: list[Message] = []
    while len(found) < options.recent_messages:
        _, page = await store.messages.list(
            thread_id, None, num_items=min(100, options.recent_messages - len(found) + 20), cursor=cursor
        )
        for m in page.page:
            if m.status == "pending" or (m.status == "failed" and not m.text):
                continue
            if m.order != prompt.order and options.exclude_tool_messages and m.is_tool:
                continue
            found.append(m)
        if page.is_done:
            break
        cursor = page.continue_cursor
    return list(reversed(found[: options.recent_messages]))


def _content(m: Message) -> str:
    if m.text:
        return m.text
    for p in m.parts:
        if isinstance(p, ObjectPart):
            return json.dumps(p.object)
    return ""


def to_chat_messages(agent: Agent, messages: list[Message]) -> list[dict[str, Any]]:
    """The OpenAI chat shape, instructions first; unpaired tool calls/results are dropped."""
    calls = {p.tool_call_id for m in messages for p in m.parts if isinstance(p, ToolCallPart)}
    results = {p.tool_call_id for m in messages for p in m.parts if isinstance(p, ToolResultPart)}
    out: list[dict[str, Any]] = [{"role": "system", "content": agent.instructions}] if agent.instructions else []
    for m in messages:
        if m.role == "tool":
            for p in m.parts:
                if isinstance(p, ToolResultPart) and p.tool_call_id in calls:
                    out.append({"role": "tool", "tool_call_id": p.tool_call_id,
                                "content": json.dumps(p.result) if not isinstance(p.result, str) else p.result})
            continue
        if m.role == "assistant":
            tool_calls = [
                {"id": p.tool_call_id, "type": "function",
                 "function": {"name": p.tool_name, "arguments": json.dumps(p.args)}}
                for p in m.parts if isinstance(p, ToolCallPart) and p.tool_call_id in results
            ]
            text = _content(m)
            if not text and not tool_calls:
                continue
            entry: dict[str, Any] = {"role": "assistant", "content": text or None}
            if tool_calls:
                entry["tool_calls"] = tool_calls
            out.append(entry)
            continue
        text = "".join(p.text for p in m.parts if isinstance(p, TextPart)) or m.text
        if text:
            out.append({"role": m.role, "content": text})
    return out


def reply_parts(text: str, reasoning: str, calls: list[ToolCallPart], obj: Any = None) -> list[Any]:
    parts: list[Any] = []
    if reasoning:
        parts.append(ReasoningPart(text=reasoning))
    if text:
        parts.append(TextPart(text=text))
    if obj is not None:
        parts.append(ObjectPart(object=obj))
    parts.extend(calls)
    return parts
