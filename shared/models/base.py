"""What a model call takes and what it streams back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.errors import Unavailable
from shared.records import Usage


class ModelError(Unavailable):
    """The model failed (after retries): HTTP errors, malformed streams, timeouts."""


@dataclass(slots=True)
class TextDelta:
    text: str


@dataclass(slots=True)
class ReasoningDelta:
    text: str


@dataclass(slots=True)
class ToolCall:
    """A complete tool call, assembled from the streamed fragments."""

    id: str
    name: str
    arguments: str


@dataclass(slots=True)
class Finish:
    reason: str
    usage: Usage | None = None


Event = TextDelta | ReasoningDelta | ToolCall | Finish
RawHandler = Callable[[str, Any], None]


@dataclass(slots=True)
class ChatRequest:
    """One Chat Completions call, in the OpenAI wire shape."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = field(default_factory=list)
    response_format: dict[str, Any] | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    raw_handler: RawHandler | None = None  # sees ("request", body) and ("chunk", event)


class Model(Protocol):
    name: str
    provider: str

    def stream(self, request: ChatRequest) -> AsyncIterator[Event]: ...
