"""Which model an agent gets."""

from __future__ import annotations

import httpx

from shared.config import Settings
from shared.models.base import Model
from shared.models.mock import MockModel
from shared.models.openai_compat import OpenAICompatible


def model_for(settings: Settings, name: str | None, *, max_retries: int = 3) -> Model:
    """``mock`` (or no LLM_BASE_URL): the mock; otherwise the named (or LLM_MODEL) model."""
    if name == "mock" or not settings.llm_base_url:
        return MockModel(settings.mock_llm_words, settings.mock_llm_delay_ms)
    model = name or settings.llm_model or "gpt-4o-mini"
    timeout = httpx.Timeout(connect=10.0, read=settings.llm_timeout_s, write=30.0, pool=10.0)
    return OpenAICompatible(settings.llm_base_url, model, api_key=settings.llm_api_key,
                            max_retries=max_retries, timeout=timeout)
