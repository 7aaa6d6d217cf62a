"""What a reply costs: each model call's usage in the ledger, the reply's total, the agent's usage
handler, metrics, and the token reservations of the app's rate limits.

A call that counts in the rate limits reserves its estimate first (a refusal fails the reply
before any cost) and settles on its real usage; a server that reports no usage is counted from
the text sent and received, never free.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from threadline.shared import metrics
from threadline.shared.agents import Agent, UsageEvent
from threadline.shared.clock import now_ms
from threadline.shared.errors import ChatError
from threadline.shared.generation.app_hooks import call_handler
from threadline.shared.llm import Model
from threadline.shared.records import Message, Usage
from threadline.shared.usage.ledger import Kind, UsageEntry, UsageLedger
from threadline.shared.usage.limits import Limits, Who, estimate_tokens

log = logging.getLogger(__name__)


class Meter:
    """The usage of one reply to ``prompt`` by ``agent``."""

    def __init__(self, agent: Agent, prompt: Message, thread_id: str, ledger: UsageLedger,
                 limits: Limits | None, teams: tuple[str, ...]) -> None:
        """``limits``: the app's rate limits when this reply counts in them (None: it does not)."""
        self._agent, self._prompt, self._thread_id = agent, prompt, thread_id
        self._ledger = ledger
        self._limits = limits if limits is not None and limits.has("tokens") else None
        self._who = Who(prompt.user_id, agent.name, teams)
        self._reserved = 0  # tokens the model call in flight reserved
        self.total = Usage()  # of the reply's steps

    async def reserve(self, messages: list[dict[str, Any]]) -> None:
        """Reserve the estimate of a model call about to send ``messages`` (RateLimited: refused)."""
        if self._limits is not None:
            self._reserved = estimate_tokens(request_chars(messages), self._agent.max_tokens)
            await self._limits.take("tokens", self._who, self._reserved)

    async def settle(self, usage: Usage | None) -> None:
        """Settle the model call's reservation: its real usage replaces the estimate (a call that
        failed without usage gives the reservation back)."""
        reserved, self._reserved = self._reserved, 0
        if self._limits is None or not reserved:
            return
        try:
            await self._limits.settle("tokens", self._who, (usage.total_tokens if usage else 0) - reserved)
        except ChatError as exc:
            log.warning("token reservation not settled: %s", exc.message)

    async def record(self, usage: Usage, kind: Kind, model: Model) -> None:
        """Keep a model call's usage in the ledger (a storage failure is logged: the reply goes on)."""
        try:
            await self._ledger.record(UsageEntry(
                at=now_ms(), user_id=self._prompt.user_id, thread_id=self._thread_id,
                agent=self._agent.name, provider=model.provider, model=model.name, kind=kind,
                input=usage.prompt_tokens, output=usage.completion_tokens, cached=usage.cached_tokens,
                reasoning=usage.reasoning_tokens))
        except ChatError as exc:
            log.warning("usage of a %s call not recorded: %s", kind, exc.message)

    async def step(self, usage: Usage | None, model: Model) -> None:
        """A step's model call ended with ``usage``: settle, record, add it up, tell the app."""
        await self.settle(usage)
        if usage is None:
            return
        await self.record(usage, "step", model)
        for name in ("prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens"):
            setattr(self.total, name, getattr(self.total, name) + getattr(usage, name))
            if name != "total_tokens" and getattr(usage, name):
                metrics.tokens.labels(model.provider, model.name, name.removesuffix("_tokens")).inc(
                    getattr(usage, name))
        if self._agent.usage_handler is not None:
            await call_handler(self._agent.usage_handler, UsageEvent(
                user_id=self._prompt.user_id, thread_id=self._thread_id, agent_name=self._agent.name,
                model=model.name, provider=model.provider, usage=usage))


def estimated(messages: list[dict[str, Any]], answer_chars: int) -> Usage:
    """The usage of a model call whose server reported none, from the text sent and received."""
    prompt = math.ceil(request_chars(messages) / 4)
    answer = math.ceil(answer_chars / 4)
    return Usage(prompt_tokens=prompt, completion_tokens=answer, total_tokens=prompt + answer, estimated=True)


def request_chars(messages: list[dict[str, Any]]) -> int:
    """Characters of text in messages as sent to the model (an image or file block counts as
    4,000, about a thousand tokens)."""
    total = 0
    for m in messages:
        content = m.get("content")
        if isinstance(content, str):
            total += len(content)
        elif isinstance(content, list):
            total += sum(len(b.get("text", "")) if b.get("type") == "text" else 4000 for b in content)
        total += len(json.dumps(m.get("tool_calls"))) if m.get("tool_calls") else 0
    return total
