"""Any OpenAI-compatible Chat Completions endpoint, streamed over httpx (SSE).

Parameters adapt to the model and the server: OpenAI's reasoning models get
``max_completion_tokens`` and no ``temperature``; an error that names a
parameter the server does not take (``stream_options``, ``max_tokens``,
``temperature``, ``strict``...), whatever its status (llama.cpp's servers
answer 500), is answered by sending the call once more without it, and the
provider remembers that for the model. Structured output falls back the same
way, in order: a ``json_schema`` response format, then ``json_object`` with the
schema beside it (llama.cpp), then the schema in the instructions (the runner
validates the reply either way). 429/5xx and connection errors are retried with
backoff before the first token, honouring ``retry-after-ms`` and ``Retry-After``
(seconds or an HTTP date).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from threadline.shared.llm.base import ChatRequest, Event, Inputs, ModelError
from threadline.shared.llm.chunks import ChunkReader, error_text
from threadline.shared.llm.providers import Provider, is_reasoning_model
from threadline.shared.llm.shapes import with_schema_instructions

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
# what to drop when a 400/422 names it: (words in the error, the parameter)
_ADAPTABLE = (
    ("stream_options", "stream_options"),
    ("max_completion_tokens", "max_tokens"),
    ("max_tokens", "max_tokens"),
    ("temperature", "temperature"),
    ("strict", "strict"),
)


class OpenAICompatible:
    """Streams a chat completion from one provider's model; see the module docstring."""

    def __init__(
        self,
        provider: Provider,
        model: str,
        *,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        timeout: httpx.Timeout | None = None,
    ) -> None:
        self.name = model
        self.provider = provider.name
        self._provider = provider
        self.reasoning_in_history = provider.wants_reasoning_in_history()
        self.inputs = Inputs(images=provider.images, pdf_files=provider.pdf_files, fetches_urls=provider.fetches_urls)
        self._url = provider.base_url.rstrip("/") + "/chat/completions"
        self._max_retries = max_retries
        self._backoff_s = backoff_s
        self._timeout = timeout or httpx.Timeout(connect=10.0, read=60.0, write=30.0, pool=10.0)

    @property
    def refused(self) -> set[str]:
        return self._provider.refused.setdefault(self.name, set())

    def body(self, request: ChatRequest) -> dict[str, Any]:
        refused = self.refused
        reasoning = is_reasoning_model(self.name)
        messages = [{k: v for k, v in m.items() if k != "reasoning_signature"} if "reasoning_signature" in m else m
                    for m in request.messages]  # (Anthropic's seal on its thinking: no Chat Completions field)
        body: dict[str, Any] = {"model": self.name, "messages": messages, "stream": True}
        if self._provider.stream_options is not False and "stream_options" not in refused:
            body["stream_options"] = {"include_usage": True}
        if request.tools:
            body["tools"] = request.tools
        if request.response_format is not None:
            fmt = _without_strict(request.response_format, "strict" in refused or not self._provider.strict_output)
            if "json_object" in refused:  # no response format at all: the schema goes in the instructions
                body["messages"] = with_schema_instructions(messages, fmt)
            elif "json_schema" in refused and fmt.get("type") == "json_schema":
                body["response_format"] = {"type": "json_object", "schema": fmt["json_schema"]["schema"]}
            else:
                body["response_format"] = fmt
        if request.temperature is not None and not reasoning and "temperature" not in refused:
            body["temperature"] = request.temperature
        if request.max_tokens is not None:
            key = "max_completion_tokens" if reasoning or "max_tokens" in refused else "max_tokens"
            body[key] = request.max_tokens
        body.update(self._provider.options)
        body.update(request.options)
        return body

    async def stream(self, request: ChatRequest) -> AsyncIterator[Event]:
        client = self._provider.client()
        attempt = 0
        adapted: set[str] = set()
        while True:
            body = self.body(request)
            if request.raw is not None:
                await request.raw("request", body)
            started = False
            try:
                async with client.stream("POST", self._url, json=body, timeout=self._timeout) as response:
                    if response.status_code != 200:
                        text = (await response.aread()).decode(errors="replace")[:2000]
                        param = _refused_param(response.status_code, text, body)
                        if param is not None and param not in adapted:
                            adapted.add(param)
                            self.refused.add(param)
                            continue  # once more without it
                        if response.status_code in RETRY_STATUS:
                            raise _Retryable(response.status_code, text, retry_after_s(response.headers))
                        raise ModelError(f"model answered {response.status_code}: {_message(text)}")
                    reader = ChunkReader(self._provider.think_tags)
                    async for line in response.aiter_lines():
                        events, chunk = reader.line(line)
                        if chunk is not None and request.raw is not None:
                            await request.raw("chunk", chunk)
                        for event in events:
                            started = True
                            yield event
                        if reader.done:
                            break
                    for event in reader.end():
                        yield event
                    return
            except (_Retryable, httpx.TransportError) as exc:
                why = f"{type(exc).__name__}: {exc}" if isinstance(exc, httpx.TransportError) else str(exc)
                if started:
                    raise ModelError(f"model stream broke off: {why}") from exc
                if attempt >= self._max_retries:
                    raise ModelError(f"model unavailable after {attempt + 1} attempts: {why}") from exc
                wait = exc.retry_after if isinstance(exc, _Retryable) else None
                await asyncio.sleep(backoff_s(self._backoff_s, attempt, wait))
                attempt += 1


class _Retryable(Exception):
    def __init__(self, status: int, text: str, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}: {_message(text)}")
        self.retry_after = retry_after


def _message(text: str) -> str:
    try:
        return error_text(json.loads(text))
    except ValueError:
        return text[:500]


# statuses whose error is about something else than a parameter (auth, routing, load)
_NOT_ABOUT_PARAMETERS = {401, 403, 404, 405, 408, 409, 425, 429, 502, 503, 504}


def _refused_param(status: int, text: str, body: dict[str, Any]) -> str | None:
    """The parameter an error says the server does not take, when we sent it. The response format
    is named by its type: ``json_schema`` (then ``json_object`` with the schema is tried), or
    ``json_object`` (then none: the schema goes in the instructions)."""
    if status < 400 or status in _NOT_ABOUT_PARAMETERS:
        return None
    lower = text.lower()
    for words, param in _ADAPTABLE:
        if words not in lower:
            continue
        sent = param in body or (param == "max_tokens" and "max_completion_tokens" in body) or (
            param == "strict" and bool((body.get("response_format") or {}).get("json_schema", {}).get("strict")))
        if sent:
            return param
    kind = (body.get("response_format") or {}).get("type")
    if kind in ("json_schema", "json_object") and (kind in lower or "response_format" in lower):
        return str(kind)
    return None


def _without_strict(response_format: dict[str, Any], drop: bool) -> dict[str, Any]:
    if not drop or "json_schema" not in response_format:
        return response_format
    schema = {k: v for k, v in response_format["json_schema"].items() if k != "strict"}
    return {**response_format, "json_schema": schema}


def backoff_s(base_s: float, attempt: int, retry_after: float | None = None) -> float:
    """How long to wait before retry ``attempt`` (0-based): jittered exponential backoff,
    at least what the server asked for, at most a minute."""
    delay = float(base_s * (2 ** attempt) * (0.5 + random.random()))
    return min(max(delay, retry_after or 0.0), 60.0)


def retry_after_s(headers: httpx.Headers) -> float | None:
    """Seconds to wait from ``retry-after-ms``, or ``Retry-After`` in seconds or as an HTTP date."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
