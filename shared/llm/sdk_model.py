"""What the providers built on a vendor's official SDK share: their name, what they take as input,
and one SDK client per provider and event loop (the SDK pools its connections)."""

from __future__ import annotations

import asyncio
from typing import Any, Generic, TypeVar

import httpx

from threadline.shared.llm.base import ChatRequest, Inputs
from threadline.shared.llm.providers import Provider

Client = TypeVar("Client")


class SdkModel(Generic[Client]):
    """A model at ``provider`` spoken to through an SDK client made by ``_make_client``."""

    reasoning_in_history = False
    _clients: dict[tuple[int, int], Any] = {}  # (provider, event loop) -> client, for every SDK model

    def __init__(self, provider: Provider, model: str, *, max_retries: int = 3,
                 timeout: httpx.Timeout | None = None) -> None:
        self.name = model
        self.provider = provider.name
        self._provider = provider
        self.inputs = Inputs(images=provider.images, pdf_files=True, fetches_urls=provider.fetches_urls)
        self._max_retries = max_retries
        self._timeout = timeout.read if timeout is not None and timeout.read else 60.0

    def _client(self) -> Client:
        key = (id(self._provider), id(asyncio.get_running_loop()))
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = self._make_client(
                api_key=self._provider.api_key or "none", base_url=self._provider.base_url.rstrip("/"),
                default_headers=self._provider.headers, max_retries=self._max_retries, timeout=self._timeout)
        return client

    def _make_client(self, **options: Any) -> Client:
        raise NotImplementedError

    def body(self, request: ChatRequest) -> dict[str, Any]:
        """The API's own request body for the call (without the common options)."""
        raise NotImplementedError

    async def _sent_body(self, request: ChatRequest) -> dict[str, Any]:
        """The body sent: the API's own, then the temperature, the provider's and the call's options
        on top; a raw handler sees it. ``tools`` in the options are the API's own tools (OpenAI's web
        search, Anthropic's server tools...): added beside the agent's, which run here."""
        body = self.body(request)
        if request.temperature is not None:
            body["temperature"] = request.temperature
        for options in (self._provider.options, request.options):
            builtin = options.get("tools") or []
            body.update({k: v for k, v in options.items() if k != "tools"})
            if builtin:
                body["tools"] = [*body.get("tools", []), *builtin]
        if request.raw is not None:
            await request.raw("request", body)
        return body
