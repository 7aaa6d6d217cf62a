"""Model providers: where an agent's model lives, and what that server family needs.

An app lists its providers in its module (``PROVIDERS = [Provider(...)]``) and
each agent names one (``Agent(provider="groq", model="llama-3.3-70b")``). The
environment's ``LLM_BASE_URL`` / ``LLM_API_KEY`` make the provider ``default``,
so a single-provider app needs no code.

Quirks a provider may switch (each has an automatic default):
- ``stream_options``: send ``{"include_usage": true}``. ``None``: send it, and
  drop it for good (for this provider) the first time a 400/422 names it
  (Mistral, Groq, Azure, Databricks reject it).
- ``think_tags``: read ``<think>…</think>`` in the content as reasoning
  (``auto``: when the content opens with it; ``always``; ``off``).
- ``reasoning_in_history``: send an assistant turn's reasoning back as
  ``reasoning_content`` when it called tools (DeepSeek's thinking mode needs it;
  ``None``: on for DeepSeek URLs).
- ``strict_output``: ask for ``strict: true`` structured output when the
  schema allows it.
- ``options``: body fields sent with every call (e.g. ``reasoning_effort``);
  an agent's ``provider_options`` and a call's options add to them.
- ``images``: the models take ``image_url`` content parts (a data URL, or a
  signed URL of a bucket when ``fetches_urls``).
- ``pdf_files``: the models take PDFs as ``file`` content parts (OpenAI's
  file inputs); otherwise a PDF reaches them as its text.
- ``fetches_urls``: the provider fetches image URLs itself (off for servers
  that cannot reach the bucket: images then go as data URLs).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

import httpx

from threadline.shared.app_module import declared_list
from threadline.shared.config import Settings
from threadline.shared.errors import BadRequest
from threadline.shared.llm.think import ThinkTags

DEFAULT = "default"
# OpenAI's reasoning models take max_completion_tokens and only the default temperature.
_REASONING_MODEL = re.compile(r"^(?:[\w.-]+/)?(?:o\d|gpt-5(?!-chat))", re.I)


@dataclass
class Provider:
    name: str
    base_url: str
    api_key: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    stream_options: bool | None = None
    think_tags: ThinkTags = "auto"
    reasoning_in_history: bool | None = None
    strict_output: bool = True
    options: dict[str, Any] = field(default_factory=dict)
    timeout_s: float | None = None  # None: LLM_TIMEOUT_S
    # the API the server speaks: OpenAI's Chat Completions; Anthropic's Messages (the anthropic SDK;
    # base_url is the API's root, e.g. https://api.anthropic.com); OpenAI's Responses (the openai SDK)
    api: Literal["chat", "anthropic", "responses"] = "chat"
    images: bool = True
    pdf_files: bool = False
    fetches_urls: bool = True
    # learned from the server's 400s, per model: parameters it does not take
    refused: dict[str, set[str]] = field(default_factory=dict, repr=False)
    _clients: dict[int, httpx.AsyncClient] = field(default_factory=dict, repr=False)

    def wants_reasoning_in_history(self) -> bool:
        if self.reasoning_in_history is not None:
            return self.reasoning_in_history
        return "deepseek" in self.base_url.lower()

    def client(self) -> httpx.AsyncClient:
        """This process's pooled HTTP client for the provider (one per event loop)."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(id(loop))
        if client is None or client.is_closed:
            limits = httpx.Limits(max_connections=512, max_keepalive_connections=64)
            client = self._clients[id(loop)] = httpx.AsyncClient(limits=limits, headers=self.auth_headers())
        return client

    def auth_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.api_key:
            headers.setdefault("Authorization", f"Bearer {self.api_key}")
        return headers


def is_reasoning_model(model: str) -> bool:
    """OpenAI o-series and GPT-5 models (not ``gpt-5-chat``), also behind a ``vendor/`` prefix."""
    return bool(_REASONING_MODEL.match(model))


@cache
def _providers(app_module: str, base_url: str | None, api_key: str | None) -> dict[str, Provider]:
    found: dict[str, Provider] = {}
    if base_url:
        found[DEFAULT] = Provider(DEFAULT, base_url, api_key)
    for p in declared_list(app_module, "PROVIDERS", Provider):
        found[p.name] = p
    return found


def providers(settings: Settings) -> dict[str, Provider]:
    """Every provider of this process: the app module's, plus ``default`` from LLM_BASE_URL."""
    return _providers(settings.app_module, settings.llm_base_url, settings.llm_api_key)


def provider_named(settings: Settings, name: str | None) -> Provider | None:
    """The named provider; None for no name when none is configured (the mock model)."""
    known = providers(settings)
    if name is None:
        return known.get(DEFAULT) or (next(iter(known.values())) if known else None)
    try:
        return known[name]
    except KeyError:
        raise BadRequest(f"unknown provider {name!r}; known: {', '.join(known) or 'none'}") from None
