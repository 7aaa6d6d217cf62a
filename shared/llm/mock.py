"""The built-in deterministic model: the whole pipeline works offline, clearly labelled."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

from threadline.shared.llm.base import ChatRequest, Event, Finish, TextDelta, ToolCall
from threadline.shared.records import Usage

WORDS = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
         "incididunt ut labore et dolore magna aliqua ut enim ad minim veniam quis nostrud").split()


class MockModel:
    """Streams ``words`` words, one every ``delay_ms``, seeded by the last user message; at most
    the request's ``max_tokens`` of them (finish reason ``length`` when it cut the answer short).

    ``tool:<name> {json}`` in the last user message makes it call that tool first
    (so the tool loop can be tried offline); with a response format it streams a
    JSON object built from the schema's properties.
    """

    name = "mock"
    provider = "mock"

    def __init__(self, words: int = 40, delay_ms: int = 30) -> None:
        self._words = words
        self._delay = delay_ms / 1000

    async def stream(self, request: ChatRequest) -> AsyncIterator[Event]:
        if request.raw is not None:
            await request.raw("request", {"model": "mock", "messages": request.messages})
        last_user = next((m for m in reversed(request.messages) if m["role"] == "user"), None)
        prompt = _text(last_user.get("content") if last_user else "")
        last = request.messages[-1] if request.messages else {}
        if last.get("role") == "user" and request.tools and prompt.startswith("tool:"):
            name, _, args = prompt[5:].partition(" ")
            yield ToolCall(id="call_mock_1", name=name, arguments=args.strip() or "{}")
            yield Finish("tool_calls", _usage(request, 0))
            return
        if request.response_format is not None:
            text = json.dumps(_object_for(request.response_format.get("json_schema", {}).get("schema", {})))
            pieces = [text[i:i + 8] for i in range(0, len(text), 8)]
        else:
            seed = int(hashlib.sha256(prompt.encode()).hexdigest(), 16)
            words = ["[mock]"] + [WORDS[(seed >> (i % 200)) % len(WORDS)] for i in range(max(0, self._words - 1))]
            pieces = [w if i == 0 else " " + w for i, w in enumerate(words[: self._words])]
        cut = request.max_tokens is not None and len(pieces) > request.max_tokens
        if cut:
            pieces = pieces[:request.max_tokens]
        for piece in pieces:
            if self._delay:
                await asyncio.sleep(self._delay)
            yield TextDelta(piece)
        yield Finish("length" if cut else "stop", _usage(request, len(pieces)))


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _usage(request: ChatRequest, completion: int) -> Usage:
    prompt = sum(len(_text(m.get("content")).split()) for m in request.messages)
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


def _object_for(schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {k: _object_for(v) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        return [_object_for(schema.get("items", {}))]
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if "enum" in schema:
        return schema["enum"][0]
    return "mock"
