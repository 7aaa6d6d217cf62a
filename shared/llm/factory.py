"""Which model an agent gets."""

from __future__ import annotations

import httpx

from threadline.shared.config import Settings
from threadline.shared.llm.anthropic_messages import AnthropicMessages
from threadline.shared.llm.base import Model
from threadline.shared.llm.mock import MockModel
from threadline.shared.llm.openai_compat import OpenAICompatible
from threadline.shared.llm.openai_responses import OpenAIResponses
from threadline.shared.llm.providers import provider_named


def model_for(settings: Settings, name: str | None, *, provider: str | None = None,
              max_retries: int = 3) -> Model:
    """``mock`` (or no provider configured): the mock; otherwise ``name`` (or LLM_MODEL) at ``provider``."""
    where = provider_named(settings, provider) if name != "mock" else None
    if where is None:
        return MockModel(settings.mock_llm_words, settings.mock_llm_delay_ms)
    model = name or settings.llm_model or "gpt-4o-mini"
    read = where.timeout_s or settings.llm_timeout_s
    timeout = httpx.Timeout(connect=10.0, read=read, write=30.0, pool=10.0)
    if where.api == "anthropic":
        return AnthropicMessages(where, model, max_retries=max_retries, timeout=timeout)
    if where.api == "responses":
        return OpenAIResponses(where, model, max_retries=max_retries, timeout=timeout)
    return OpenAICompatible(where, model, max_retries=max_retries, timeout=timeout)
