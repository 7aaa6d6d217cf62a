"""Anthropic's Messages API, natively, through the official ``anthropic`` SDK (its streaming
events, retries and errors), behind the same events as every model.

A call arrives in the OpenAI chat shape every model gets (``ChatRequest``) and goes out as a
Messages request: the system messages become ``system`` (marked for prompt caching), assistant
tool calls ``tool_use`` blocks, tool results ``tool_result`` blocks in a user turn, images and PDFs
``image`` and ``document`` blocks; a structured output's schema goes in the system prompt (the
runner validates the reply). Streamed back: text, thinking (extended thinking, when the agent's
``provider_options`` ask for it), tool calls as their input JSON arrives, and usage with the
prompt cache's reads and writes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic

from threadline.shared.llm.base import (
    ChatRequest,
    Citation,
    Event,
    Finish,
    ModelError,
    ReasoningDelta,
    ReasoningSealed,
    RefusalDelta,
    TextDelta,
    ToolCall,
    ToolCallDelta,
)
from threadline.shared.llm.sdk_model import SdkModel
from threadline.shared.llm.shapes import (
    call_arguments,
    content_text,
    data_url,
    with_schema_instructions,
)
from threadline.shared.records import Usage

DEFAULT_MAX_TOKENS = 4096  # the Messages API needs one; an agent's max_tokens wins
STOP_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "tool_use": "tool_calls", "max_tokens": "length",
                "pause_turn": "stop", "refusal": "refusal"}
CACHED = {"type": "ephemeral"}


class AnthropicMessages(SdkModel[anthropic.AsyncAnthropic]):
    """Streams one Messages call of ``model`` at ``provider`` (``api="anthropic"``)."""

    reasoning_in_history = True  # extended thinking wants its signed thinking back on tool turns

    def _make_client(self, **options: Any) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(**options)

    def body(self, request: ChatRequest) -> dict[str, Any]:
        messages = request.messages
        if request.response_format is not None:
            messages = with_schema_instructions(messages, request.response_format)
        system, turns = to_anthropic(messages)
        body: dict[str, Any] = {"model": self.name, "messages": turns,
                                "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS}
        if system:
            body["system"] = [{"type": "text", "text": system, "cache_control": CACHED}]
        if request.tools:
            tools = [{"name": t["function"]["name"], "description": t["function"].get("description", ""),
                      "input_schema": t["function"].get("parameters") or {"type": "object", "properties": {}}}
                     for t in request.tools]
            tools[-1]["cache_control"] = CACHED  # the tools and system prompt are one cached prefix
            body["tools"] = tools
        return body

    async def stream(self, request: ChatRequest) -> AsyncIterator[Event]:
        body = await self._sent_body(request)
        calls: dict[int, list[str]] = {}  # block index -> [id, name, input JSON so far]
        usage = Usage()
        reason = ""
        try:
            events = await self._client().messages.create(**body, stream=True)
            async for event in events:
                if request.raw is not None:
                    await request.raw("chunk", event.to_dict())
                kind = event.type
                if kind == "message_start":
                    usage = _usage(event.message.usage, usage)
                elif kind == "content_block_start" and event.content_block.type == "tool_use":
                    calls[event.index] = [event.content_block.id, event.content_block.name, ""]
                elif kind == "content_block_delta":
                    delta = event.delta
                    if delta.type == "text_delta":
                        yield TextDelta(delta.text)
                    elif delta.type == "thinking_delta":
                        yield ReasoningDelta(delta.thinking)
                    elif delta.type == "signature_delta":
                        yield ReasoningSealed(delta.signature)
                    elif delta.type == "citations_delta" and getattr(delta.citation, "url", None):
                        yield Citation(delta.citation.url, getattr(delta.citation, "title", None) or "")
                    elif delta.type == "input_json_delta" and event.index in calls:
                        call = calls[event.index]
                        call[2] += delta.partial_json
                        yield ToolCallDelta(index=list(calls).index(event.index), id=call[0], name=call[1],
                                            arguments=delta.partial_json)
                elif kind == "content_block_stop" and event.index in calls:
                    call_id, name, arguments = calls[event.index]
                    yield ToolCall(id=call_id, name=name, arguments=arguments or "{}")
                elif kind == "message_delta":
                    reason = event.delta.stop_reason or reason
                    usage = _usage(event.usage, usage)
        except anthropic.APIStatusError as exc:
            raise ModelError(f"model answered {exc.status_code}: {_message(exc)}") from exc
        except anthropic.APIError as exc:
            raise ModelError(f"model stream broke off: {_message(exc)}") from exc
        if not reason:
            raise ModelError("the model's stream ended without a stop reason (cut off)")
        if reason == "refusal":
            yield RefusalDelta("the model declined to answer")
        yield Finish(STOP_REASONS.get(reason, reason), usage)


def _message(exc: anthropic.APIError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error")
    found = error.get("message") if isinstance(error, dict) else None
    return str(found or exc.message)[:500]


def _usage(got: Any, before: Usage) -> Usage:
    """Anthropic counts input apart from the cache's reads and writes; ours has them inside."""
    if got is None:
        return before
    fresh = getattr(got, "input_tokens", None)
    read = getattr(got, "cache_read_input_tokens", None)
    written = getattr(got, "cache_creation_input_tokens", None)
    prompt = (fresh or 0) + (read or 0) + (written or 0) if fresh is not None else before.prompt_tokens
    cached = read if read is not None else before.cached_tokens
    completion = getattr(got, "output_tokens", None)
    completion = completion if completion is not None else before.completion_tokens
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion,
                 cached_tokens=cached)


def to_anthropic(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """(system prompt, turns) of OpenAI-shaped messages; turns of one role in a row are merged."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for m in messages:
        role = m["role"]
        if role == "system":
            system.append(m["content"] if isinstance(m["content"], str) else content_text(m["content"]))
            continue
        if role == "tool":
            blocks = [{"type": "tool_result", "tool_use_id": m["tool_call_id"], "content": content_text(m["content"])}]
            role = "user"
        elif role == "assistant":
            blocks = _blocks(m.get("content"))
            if m.get("reasoning_signature") and m.get("reasoning_content"):  # thinking first, as it came
                blocks.insert(0, {"type": "thinking", "thinking": m["reasoning_content"],
                                  "signature": m["reasoning_signature"]})
            for call in m.get("tool_calls") or []:
                blocks.append({"type": "tool_use", "id": call["id"], "name": call["function"]["name"],
                               "input": call_arguments(call["function"].get("arguments"))})
        else:
            blocks = _blocks(m.get("content"))
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] += blocks
        else:
            turns.append({"role": role, "content": blocks})
    return "\n\n".join(s for s in system if s), turns


def _blocks(content: Any) -> list[dict[str, Any]]:
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type")
        if kind == "text" and part.get("text"):
            blocks.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            blocks.append({"type": "image", "source": _source(part["image_url"]["url"])})
        elif kind == "file":
            document = {"type": "document", "source": _source(part["file"].get("file_data") or "")}
            if part["file"].get("filename"):
                document["title"] = part["file"]["filename"]
            blocks.append(document)
    return blocks


def _source(url: str) -> dict[str, Any]:
    """A data: URL as base64 bytes, any other URL as a URL Anthropic fetches."""
    inline = data_url(url)
    if inline is not None:
        return {"type": "base64", "media_type": inline[0], "data": inline[1]}
    return {"type": "url", "url": url}
