"""Reading a Chat Completions stream: SSE lines in, model events out.

What real servers send beyond OpenAI's own format, and how it is read:
- Ollama numbers every parallel tool call ``index: 0``, each with its own id: a
  fragment with a new id starts a new call. Gemini sends whole calls with no
  index and empty ids: a named fragment after a complete call starts a new one.
- Groq reports usage inside ``x_groq``.
- llama.cpp reports a failure mid-stream as an ``error: {...}`` line (then
  ``data: [DONE]``); vLLM and others send ``{"error": ...}`` chunks; some send
  ``event: error``. Each fails the call with the server's message.
- Some servers end with ``finish_reason`` but no usage and no ``[DONE]``: a
  received finish reason completes the stream; a stream with neither is cut.
- ``<think>`` in the content (no reasoning parser on the server) is reasoning;
  ``reasoning_content`` / ``reasoning`` deltas are reasoning as well.
- ``delta.refusal`` (OpenAI) is a refusal, not text.
- ``finish_reason: length`` while a tool call is open is a truncated call.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from threadline.shared.llm.base import (
    Event,
    Finish,
    ModelError,
    ReasoningDelta,
    RefusalDelta,
    TextDelta,
    ToolCall,
    ToolCallDelta,
)
from threadline.shared.llm.think import ThinkSplitter, ThinkTags
from threadline.shared.records import Usage


@dataclass(slots=True)
class _Call:
    id: str
    name: str = ""
    arguments: str = ""


def usage_of(raw: dict[str, Any]) -> Usage:
    """OpenAI's usage object, with cached and reasoning token counts where given."""
    prompt_details = raw.get("prompt_tokens_details") or {}
    completion_details = raw.get("completion_tokens_details") or {}
    prompt, completion = int(raw.get("prompt_tokens") or 0), int(raw.get("completion_tokens") or 0)
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=int(raw.get("total_tokens") or prompt + completion),
        cached_tokens=int(prompt_details.get("cached_tokens") or raw.get("prompt_cache_hit_tokens") or 0),
        reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
    )


def error_text(payload: Any) -> str:
    """The message of an error payload in any of the shapes servers use."""
    if isinstance(payload, dict):
        inner = payload.get("error", payload)
        if isinstance(inner, dict):
            message = inner.get("message") or inner.get("msg") or inner.get("detail")
            code = inner.get("code") or inner.get("type")
            if message:
                return f"{message} ({code})" if code else str(message)
        elif isinstance(inner, str):
            return inner
    return str(payload)[:500]


class ChunkReader:
    """Turns the lines of one streamed response into events; ``end()`` closes it."""

    def __init__(self, think: ThinkTags = "auto") -> None:
        self._think = ThinkSplitter(think)
        self._calls: list[_Call] = []
        self._by_index: dict[int, _Call] = {}
        self._event: str | None = None
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.done = False

    def line(self, line: str) -> tuple[list[Event], dict[str, Any] | None]:
        """(events, the decoded chunk if the line carried one)."""
        if not line:
            self._event = None  # a blank line ends an SSE event
            return [], None
        if line.startswith(":"):
            return [], None
        if line.startswith("event:"):
            self._event = line[6:].strip()
            return [], None
        if line.startswith("error:"):
            raise ModelError(f"model error: {error_text(_json_or_text(line[6:].strip()))}")
        if not line.startswith("data:"):
            return [], None  # id:/retry: fields carry nothing we need
        data = line[5:].strip()
        if data == "[DONE]":
            self.done = True
            return [], None
        chunk = _json_or_text(data)
        if not isinstance(chunk, dict):
            raise ModelError(f"malformed stream chunk: {data[:200]!r}")
        if self._event == "error" or "error" in chunk:
            raise ModelError(f"model error: {error_text(chunk)}")
        return self._chunk(chunk), chunk

    def _chunk(self, chunk: dict[str, Any]) -> list[Event]:
        events: list[Event] = []
        raw_usage = chunk.get("usage") or (chunk.get("x_groq") or {}).get("usage")  # Groq: in x_groq
        if raw_usage:
            self.usage = usage_of(raw_usage)
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning:
                events.append(ReasoningDelta(reasoning))
            if delta.get("content"):
                for kind, piece in self._think.feed(delta["content"]):
                    events.append(ReasoningDelta(piece) if kind == "reasoning" else TextDelta(piece))
            if delta.get("refusal"):
                events.append(RefusalDelta(delta["refusal"]))
            for frag in delta.get("tool_calls") or []:
                events.extend(self._tool_fragment(frag))
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return events

    def _tool_fragment(self, frag: dict[str, Any]) -> list[Event]:
        index = int(frag.get("index") or 0)
        frag_id = frag.get("id") or ""
        fn = frag.get("function") or {}
        name = fn.get("name") or ""
        call = self._by_index.get(index)
        if (call is None or (frag_id and call.id and frag_id != call.id)  # Ollama: index 0, a new id
                or (name and call.name and not frag_id and _is_json(call.arguments))):  # Gemini: no index, no id
            call = _Call(frag_id)
            self._calls.append(call)
            self._by_index[index] = call
        elif frag_id and not call.id:
            call.id = frag_id
        if name and name != call.name:
            call.name += name
        args = fn.get("arguments")
        if isinstance(args, dict):  # a few servers send the arguments as an object
            args = json.dumps(args)
        if not args:
            return []
        call.arguments += args
        return [ToolCallDelta(self._calls.index(call), call.id, call.name, args)]

    def end(self) -> list[Event]:
        """The held-back text, the complete tool calls and the finish; ModelError for a cut stream."""
        if self.finish_reason is None:  # [DONE] alone does not say the answer is whole
            raise ModelError("the model's stream ended before it finished (no finish reason)")
        events: list[Event] = [ReasoningDelta(p) if k == "reasoning" else TextDelta(p) for k, p in self._think.end()]
        reason = self.finish_reason or "stop"
        if self._calls and reason == "length":
            raise ModelError("the model's output was cut off (length) in the middle of a tool call")
        for i, c in enumerate(self._calls):
            events.append(ToolCall(id=c.id or f"call_{i}", name=c.name, arguments=c.arguments or "{}"))
        events.append(Finish(reason="tool_calls" if self._calls else reason, usage=self.usage))
        return events


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _json_or_text(data: str) -> Any:
    try:
        return json.loads(data)
    except json.JSONDecodeError:
        return data
