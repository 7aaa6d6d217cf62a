"""The context a model sees: instructions, recent messages, the prompt's own order."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from threadline.shared.agents import Agent, ContextOptions
from threadline.shared.errors import ChatError, Unavailable
from threadline.shared.rag.knowledge import Knowledge, passages_message
from threadline.shared.records import (
    FilePart,
    ImagePart,
    Message,
    ObjectPart,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)
from threadline.shared.score import after_order
from threadline.shared.threads import Store
from threadline.shared.vectors.rpc import Hit, SearchRequest
from threadline.shared.vectors.search import MemorySearch

log = logging.getLogger(__name__)


async def fetch_context_messages(
    store: Store, thread_id: str, prompt: Message, options: ContextOptions,
    memory: MemorySearch | None = None,
) -> list[Message]:
    """What the model sees before the instructions are added, in this order:
    search results (ranked by fused score), the thread's snippets, the document
    passages that match the prompt (prompt-based RAG, shared.rag.knowledge), then the
    recent messages up to and including the prompt's order (oldest first).

    Only messages before the prompt's order count (so regenerating an old reply
    works), plus what the prompt's order already holds (earlier steps of this
    reply). Tool messages of earlier orders are left out when the options say so;
    pending (in-flight) replies never count. Without ``memory`` (or when it cannot
    be reached) there are no search results, no passages and only the recent snippets.
    """
    recent = await _recent_messages(store, thread_id, prompt, options)
    found: list[Message] = []
    snippet_hits: list[Hit] = []
    if memory is not None and prompt.text.strip():
        try:
            found = await _search_messages(store, memory, prompt, options, {m.message_id for m in recent})
            snippet_hits = await _search_snippets(store, memory, prompt, options)
        except ChatError as exc:
            log.warning("memory search unavailable, answering without it: %s", exc.message)
    snippets = await _snippets_message(store, thread_id, options, snippet_hits)
    passages = await passages_for(store, memory, prompt, options)
    return [*found, *snippets, *passages, *recent]


async def passages_for(store: Store, memory: MemorySearch | None, prompt: Message,
                       options: ContextOptions) -> list[Message]:
    """Prompt-based RAG: the context message of the document passages matching the prompt
    (none without ``rag`` options, memory search, or prompt text)."""
    if options.rag is None or memory is None or not prompt.text.strip():
        return []
    try:
        results = await Knowledge(store, memory, prompt.user_id).search(options.rag, prompt.text)
    except Unavailable as exc:
        log.warning("document search unavailable, answering without it: %s", exc.message)
        return []
    message = passages_message(prompt.thread_id, results)
    return [message] if message is not None else []


async def _recent_messages(
    store: Store, thread_id: str, prompt: Message, options: ContextOptions
) -> list[Message]:
    cursor = after_order(prompt.order)
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


async def _search_messages(store: Store, memory: MemorySearch, prompt: Message, options: ContextOptions,
                           already: set[str]) -> list[Message]:
    so = options.search_options
    if so is None or not (so.text_search or so.vector_search):
        return []
    hits = await memory.search(SearchRequest(
        user_id=prompt.user_id, thread_id=prompt.thread_id, text=prompt.text, before_order=prompt.order,
        other_threads=options.search_other_threads, limit=so.limit, text_search=so.text_search,
        vector_search=so.vector_search, threshold=so.vector_score_threshold, kinds=("message",)))
    before, after = so.message_range.get("before", 0), so.message_range.get("after", 0)
    out: list[Message] = []
    seen = set(already)
    for hit in hits:  # best fused score first; each hit with its neighbours, in their order
        order, tid = hit.order, hit.thread_id
        high = order + after if tid != prompt.thread_id else min(order + after, prompt.order - 1)
        for m in await store.messages.in_orders(tid, max(0, order - before), high):
            if m.message_id in seen or m.user_id != prompt.user_id or m.status != "success":
                continue
            if options.exclude_tool_messages and m.is_tool:
                continue
            seen.add(m.message_id)
            out.append(m)
    return out


async def _search_snippets(store: Store, memory: MemorySearch, prompt: Message,
                           options: ContextOptions) -> list[Hit]:
    so = options.snippets
    if so is None or not so.search or so.limit <= 0:
        return []
    if await store.snippets.count(prompt.thread_id) <= so.recent:
        return []  # the recent ones are all there is
    return await memory.search(SearchRequest(
        user_id=prompt.user_id, thread_id=prompt.thread_id, text=prompt.text, limit=so.limit, kinds=("snippet",)))


async def _snippets_message(store: Store, thread_id: str, options: ContextOptions,
                            hits: list[Hit]) -> list[Message]:
    so = options.snippets
    if so is None or not thread_id:
        return []
    chosen = {s.snippet_id: s for s in await store.snippets.recent(thread_id, so.recent)} if so.recent > 0 else {}
    for hit in hits:
        sid = hit.snippet_id
        if sid is not None and sid not in chosen:
            try:
                chosen[sid] = await store.snippets.get(sid)
            except ChatError:
                continue  # deleted meanwhile
    if not chosen:
        return []
    lines = "\n".join(f"- {s.text}" for s in sorted(chosen.values(), key=lambda s: s.created_at))
    text = "Reference notes kept for this thread (earlier edits and the like):\n" + lines
    return [Message(message_id="", thread_id=thread_id, role="system", text=text, parts=[TextPart(text=text)])]


def _content(m: Message) -> str:
    if m.text:
        return m.text
    for p in m.parts:
        if isinstance(p, ObjectPart):
            return json.dumps(p.object)
    return ""


def to_chat_messages(agent: Agent, messages: list[Message], *, reasoning_in_history: bool = False,
                     attachments: Mapping[str, list[dict[str, Any]]] | None = None) -> list[dict[str, Any]]:
    """The OpenAI chat shape, instructions first; unpaired tool calls/results are dropped.

    ``reasoning_in_history``: an assistant turn that called tools carries its
    reasoning back as ``reasoning_content`` (DeepSeek's thinking mode needs it).
    ``attachments``: the content blocks of file and image parts by file id or url
    (shared.generation.attachments); a user message with files becomes a list of blocks,
    and an assistant's files are named in its text. Without them, files are named only.
    """
    calls = {p.tool_call_id for m in messages for p in m.parts if isinstance(p, ToolCallPart)}
    results = {p.tool_call_id for m in messages for p in m.parts if isinstance(p, ToolResultPart)}
    # (instructions a callable builds are built for each reply first: shared.agents.request.instructions_for)
    assert isinstance(agent.instructions, str), "build the agent's instructions first"
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
            shown = [p.filename or p.file_id or p.url for p in m.parts if isinstance(p, FilePart | ImagePart)]
            if shown:
                text = (text + "\n" if text else "") + "".join(f"[{name} was shown to the user]" for name in shown)
            if not text and not tool_calls:
                continue
            # "" rather than null beside tool calls: OpenAI takes both, llama.cpp's server refuses null
            entry: dict[str, Any] = {"role": "assistant", "content": text}
            if tool_calls:
                entry["tool_calls"] = tool_calls
                thoughts = [p for p in m.parts if isinstance(p, ReasoningPart)]
                reasoning = "".join(p.text for p in thoughts)
                if reasoning_in_history and reasoning:
                    entry["reasoning_content"] = reasoning
                    signature = next((p.signature for p in thoughts if p.signature), None)
                    if signature:  # Anthropic's: the thinking goes back signed
                        entry["reasoning_signature"] = signature
            out.append(entry)
            continue
        text = "".join(p.text for p in m.parts if isinstance(p, TextPart)) or m.text
        files = [p for p in m.parts if isinstance(p, FilePart | ImagePart)]
        if files and m.role == "user":
            blocks = [{"type": "text", "text": text}] if text else []
            for p in files:
                key = p.file_id or p.url
                blocks += (attachments or {}).get(key) or [{"type": "text", "text": f"[file {p.filename or key}]"}]
            out.append({"role": m.role, "content": blocks})
        elif text:
            out.append({"role": m.role, "content": text})
    return out


def reply_parts(text: str, reasoning: str, calls: list[ToolCallPart], obj: Any = None, *,
                signature: str = "") -> list[Any]:
    parts: list[Any] = []
    if reasoning:
        parts.append(ReasoningPart(text=reasoning, signature=signature or None))
    if text:
        parts.append(TextPart(text=text))
    if obj is not None:
        parts.append(ObjectPart(object=obj))
    parts.extend(calls)
    return parts
