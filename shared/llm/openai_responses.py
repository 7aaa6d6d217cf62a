"""OpenAI's Responses API, natively, through the official ``openai`` SDK (its streaming events,
retries and errors), behind the same events as every model.

A call arrives in the OpenAI chat shape every model gets (``ChatRequest``) and goes out as a
Responses request: system messages become ``instructions``, the rest ``input`` items (messages with
``input_text``, ``input_image`` and ``input_file`` parts; assistant tool calls ``function_call``
items; tool results ``function_call_output`` items), structured output ``text.format`` with the
JSON schema, nothing stored on OpenAI's side (``store: false``). Streamed back: text, reasoning
summaries (ask for them with ``provider_options={"reasoning": {"effort": ..., "summary": "auto"}}``),
refusals, function calls as their arguments arrive, and usage with cached and reasoning tokens.
With reasoning asked for, the reasoning items come back encrypted and go back with the function
calls they led to (nothing is stored on OpenAI's side, so the next call carries them).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
import openai

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
from threadline.shared.llm.shapes import content_text
from threadline.shared.records import Usage


class OpenAIResponses(SdkModel[openai.AsyncOpenAI]):
    """Streams one Responses call of ``model`` at ``provider`` (``api="responses"``)."""

    reasoning_in_history = True  # encrypted reasoning items go back with their function calls

    def _make_client(self, **options: Any) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(**options)

    def body(self, request: ChatRequest) -> dict[str, Any]:
        instructions, items = to_input(request.messages)
        body: dict[str, Any] = {"model": self.name, "input": items, "store": False}
        if "reasoning" in request.options or "reasoning" in self._provider.options:
            body["include"] = ["reasoning.encrypted_content"]
        if instructions:
            body["instructions"] = instructions
        if request.tools:
            body["tools"] = [{"type": "function", "name": t["function"]["name"],
                              "description": t["function"].get("description", ""),
                              "parameters": t["function"].get("parameters") or {"type": "object", "properties": {}},
                              "strict": False} for t in request.tools]
        fmt = request.response_format
        if fmt is not None and fmt.get("type") == "json_schema":
            schema = fmt["json_schema"]
            body["text"] = {"format": {"type": "json_schema", "name": schema.get("name", "output"),
                                       "schema": schema["schema"], "strict": bool(schema.get("strict"))}}
        elif fmt is not None:
            body["text"] = {"format": {"type": "json_object"}}
        if request.max_tokens is not None:
            body["max_output_tokens"] = request.max_tokens
        return body

    async def stream(self, request: ChatRequest) -> AsyncIterator[Event]:
        body = await self._sent_body(request)
        calls: dict[str, tuple[str, str]] = {}  # item id -> (call id, function name)
        try:
            events = await self._client().responses.create(**body, stream=True)
            async for event in events:
                if request.raw is not None:
                    await request.raw("chunk", event.to_dict())
                kind = event.type
                if kind == "response.output_text.delta":
                    yield TextDelta(event.delta)
                elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
                    yield ReasoningDelta(event.delta)
                elif kind == "response.refusal.delta":
                    yield RefusalDelta(event.delta)
                elif kind == "response.output_text.annotation.added":
                    note = event.annotation
                    note = note if isinstance(note, dict) else getattr(note, "__dict__", {})
                    if note.get("type") == "url_citation" and note.get("url"):
                        yield Citation(str(note["url"]), str(note.get("title") or ""))
                elif kind == "response.output_item.added" and event.item.type == "function_call":
                    calls[event.item.id or event.item.call_id] = (event.item.call_id, event.item.name)
                elif kind == "response.function_call_arguments.delta" and event.item_id in calls:
                    call_id, name = calls[event.item_id]
                    yield ToolCallDelta(index=list(calls).index(event.item_id), id=call_id, name=name,
                                        arguments=event.delta)
                elif kind == "response.output_item.done" and event.item.type == "reasoning":
                    sealed = getattr(event.item, "encrypted_content", None)
                    if sealed:
                        yield ReasoningSealed(_seal.encode({"id": event.item.id, "encrypted_content": sealed}).decode())
                elif kind == "response.output_item.done" and event.item.type == "function_call":
                    yield ToolCall(id=event.item.call_id, name=event.item.name, arguments=event.item.arguments or "{}")
                elif kind in ("response.completed", "response.incomplete"):
                    yield _finish(event.response, called=bool(calls))
                    return
                elif kind == "response.failed":
                    error = event.response.error
                    raise ModelError(f"the model failed: {error.message if error else 'no reason given'}")
                elif kind == "error":
                    raise ModelError(f"the model failed: {event.message}")
        except openai.APIStatusError as exc:
            raise ModelError(f"model answered {exc.status_code}: {_message(exc)}") from exc
        except openai.APIError as exc:
            raise ModelError(f"model stream broke off: {_message(exc)}") from exc
        raise ModelError("the model's stream ended before the response completed (cut off)")


def _finish(response: Any, *, called: bool) -> Finish:
    details = getattr(response, "incomplete_details", None)
    if response.status == "incomplete":
        reason = "length" if details is not None and details.reason == "max_output_tokens" else "content_filter"
    else:
        reason = "tool_calls" if called else "stop"
    got = response.usage
    if got is None:
        return Finish(reason, None)
    cached = getattr(got.input_tokens_details, "cached_tokens", 0) or 0
    thought = getattr(got.output_tokens_details, "reasoning_tokens", 0) or 0
    return Finish(reason, Usage(prompt_tokens=got.input_tokens, completion_tokens=got.output_tokens,
                                total_tokens=got.total_tokens, cached_tokens=cached, reasoning_tokens=thought))


def _message(exc: openai.APIError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", body)
    found = error.get("message") if isinstance(error, dict) else None
    return str(found or exc.message)[:500]


def to_input(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """(instructions, input items) of OpenAI chat-shaped messages."""
    instructions: list[str] = []
    items: list[dict[str, Any]] = []
    for m in messages:
        role = m["role"]
        if role == "system":
            instructions.append(content_text(m["content"]))
        elif role == "tool":
            items.append({"type": "function_call_output", "call_id": m["tool_call_id"],
                          "output": content_text(m["content"])})
        elif role == "assistant":
            reasoning = _reasoning_item(m)
            if reasoning is not None:
                items.append(reasoning)
            text = content_text(m.get("content"))
            if text:
                items.append({"role": "assistant", "content": [{"type": "output_text", "text": text}]})
            for call in m.get("tool_calls") or []:
                items.append({"type": "function_call", "call_id": call["id"], "name": call["function"]["name"],
                              "arguments": call["function"].get("arguments") or "{}"})
        else:
            items.append({"role": "user", "content": _parts(m.get("content"))})
    return "\n\n".join(s for s in instructions if s), items


_seal = msgspec.json.Encoder()


def _reasoning_item(message: dict[str, Any]) -> dict[str, Any] | None:
    """The encrypted reasoning item an assistant turn kept (its signature), to send back; None when
    it kept none (or another provider's)."""
    try:
        sealed = msgspec.json.decode(message.get("reasoning_signature") or "null")
    except msgspec.DecodeError:
        return None
    if not isinstance(sealed, dict) or not sealed.get("encrypted_content"):
        return None
    summary = [{"type": "summary_text", "text": message["reasoning_content"]}] if message.get("reasoning_content") else []
    return {"type": "reasoning", "id": sealed.get("id"), "summary": summary,
            "encrypted_content": sealed["encrypted_content"]}


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "input_text", "text": content}]
    parts: list[dict[str, Any]] = []
    for part in content or []:
        kind = part.get("type")
        if kind == "text":
            parts.append({"type": "input_text", "text": part.get("text", "")})
        elif kind == "image_url":
            parts.append({"type": "input_image", "image_url": part["image_url"]["url"], "detail": "auto"})
        elif kind == "file":
            parts.append({"type": "input_file", "filename": part["file"].get("filename") or "file",
                          "file_data": part["file"].get("file_data") or ""})
    return parts
