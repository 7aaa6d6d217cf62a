"""The app's handlers a reply calls (an agent's usage handler, its raw event handler): sync or
async, and never able to break the reply."""

from __future__ import annotations

import inspect
import logging
from typing import Any

from threadline.shared.agents import Agent
from threadline.shared.llm import Model
from threadline.shared.llm.base import RawEvent

log = logging.getLogger(__name__)


async def call_handler(handler: Any, *args: Any) -> None:
    """Run an app's handler, sync or async; a failing one is logged and never breaks the reply."""
    try:
        result = handler(*args)
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.exception("handler %s failed", getattr(handler, "__name__", handler))


class RawRelay:
    """Hands the provider's raw events of one reply to the agent's ``raw_handler``, written either
    as (event) or as (kind, payload)."""

    def __init__(self, agent: Agent, model: Model, user_id: str, thread_id: str) -> None:
        self._agent, self._model, self._user_id, self._thread_id = agent, model, user_id, thread_id
        self._two: bool | None = None

    async def __call__(self, kind: str, payload: Any) -> None:
        handler = self._agent.raw_handler
        if handler is None:
            return
        if self._two is None:
            self._two = _takes_two(handler)
        if self._two:
            await call_handler(handler, kind, payload)
            return
        await call_handler(handler, RawEvent(kind, payload, user_id=self._user_id, thread_id=self._thread_id,
                                             agent_name=self._agent.name, provider=self._model.provider,
                                             model=self._model.name))


def _takes_two(handler: Any) -> bool:
    """A raw handler written as (kind, payload) rather than (event)."""
    try:
        params = [p for p in inspect.signature(handler).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return False
    return len(params) >= 2
