"""Any OpenAI-compatible Chat Completions endpoint, streamed over httpx (SSE)."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx

from shared.models.base import (
    ChatRequest,
    Event,
    Finish,
    ModelError,
    ReasoningDelta,
    TextDelta,
    ToolCall,
)
from shared.records import Usage

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class OpenAICompatible:
    """Streams a chat completion; retries 429/5xx/connection errors before the first token."""

    provider = "openai-compatible"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        timeout: httpx.Timeout | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.name = model
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._max_retries = max_retries
        self._backoff_s = backoff_s
        self._timeout = timeout or httpx.Timeout(connect=10.0, read=60.0, write=30.0, pool=10.0)
        self._client = client

    def body(self, request: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.name,
            "messages": request.messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.tools:
            body["tools"] = request.tools
        if request.response_format is not None:
            body["response_format"] = request.response_format
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        return body

    async def stream(self, request: ChatRequest) -> AsyncIterator[Event]:
        body = self.body(request)
        if request.raw_handler:
            request.raw_handler("request", body)
        client = self._client or httpx.AsyncClient(timeout=self._timeout)
        try:
            attempt = 0
            while True:
                started = False
                try:
                    async with client.stream("POST", self._url, json=body, headers=self._headers,
                                             timeout=self._timeout) as response:
                        if response.status_code != 200:
                            text = (await response.aread()).decode(errors="replace")[:500]
                            retry = response.status_code in RETRY_STATUS
                            raise _Retryable(response.status_code, text, _retry_after(response)) if retry \
                                else ModelError(f"model answered {response.status_code}: {text}")
                        async for event in _events(response, request):
                            started = True
                            yield event
                        return
                except (_Retryable, httpx.TransportError) as exc:
                    why = f"{type(exc).__name__}: {exc}" if isinstance(exc, httpx.TransportError) else str(exc)
                    if started:
                        raise ModelError(f"model stream broke off: {why}") from exc
                    if attempt >= self._max_retries:
                        raise ModelError(f"model unavailable after {attempt + 1} attempts: {why}") from exc
                    delay = self._backoff_s * (2 ** attempt) * (0.5 + random.random())
                    if isinstance(exc, _Retryable) and exc.retry_after is not None:
                        delay = max(delay, exc.retry_after)
                    attempt += 1
                    await asyncio.sleep(min(delay, 30.0))
        finally:
            if self._client is None:
                await client.aclose()


class _Retryable(Exception):
    def __init__(self, status: int, text: str, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}: {text}")
        self.retry_after = retry_after


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("retry-after")
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


async def _events(response: httpx.Response, request: ChatRequest) -> AsyncIterator[Event]:
    calls: dict[int, dict[str, str]] = {}
    finish_reason = "stop"
    usage: Usage | None = None
    done = False
    async for line in response.aiter_lines():
        if not line or line.startswith(":"):
            continue
        if not line.startswith("data:"):
            continue  # event:/id:/retry: fields carry nothing we need
        data = line[5:].strip()
        if data == "[DONE]":
            done = True
            break
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError as exc:
            raise ModelError(f"malformed stream chunk: {data[:200]!r}") from exc
        if not isinstance(chunk, dict):
            raise ModelError(f"malformed stream chunk: {data[:200]!r}")
        if request.raw_handler:
            request.raw_handler("chunk", chunk)
        if "error" in chunk:
            raise ModelError(f"model error: {chunk['error']}")
        if chunk.get("usage"):
            u = chunk["usage"]
            usage = Usage(prompt_tokens=int(u.get("prompt_tokens") or 0),
                          completion_tokens=int(u.get("completion_tokens") or 0),
                          total_tokens=int(u.get("total_tokens") or 0))
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                yield TextDelta(delta["content"])
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning:
                yield ReasoningDelta(reasoning)
            for frag in delta.get("tool_calls") or []:
                slot = calls.setdefault(int(frag.get("index", 0)), {"id": "", "name": "", "arguments": ""})
                slot["id"] = frag.get("id") or slot["id"]
                fn = frag.get("function") or {}
                slot["name"] += fn.get("name") or ""
                slot["arguments"] += fn.get("arguments") or ""
            if choice.get("finish_reason"):
                finish_reason = choice["finish_reason"]
    if not done and finish_reason == "stop" and not calls and usage is None:
        raise ModelError("model stream ended without [DONE]")
    for index in sorted(calls):
        c = calls[index]
        yield ToolCall(id=c["id"] or f"call_{index}", name=c["name"], arguments=c["arguments"] or "{}")
    yield Finish(reason="tool_calls" if calls else finish_reason, usage=usage)
