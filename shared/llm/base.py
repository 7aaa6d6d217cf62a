"""What a model call takes and what it streams back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from threadline.shared.errors import Unavailable
from threadline.shared.records import Usage


class ModelError(Unavailable):
    """The model failed (after retries): HTTP errors, error events, malformed or cut streams."""


@dataclass(slots=True)
class TextDelta:
    text: str


@dataclass(slots=True)
class ReasoningDelta:
    text: str


@dataclass(slots=True)
class ReasoningSealed:
    """The provider's signature of the reasoning so far (Anthropic's extended thinking): the model
    wants the reasoning back, signed, when the turn's tool results go back to it."""

    signature: str


@dataclass(slots=True)
class Citation:
    """A web page the answer cites (a vendor's built-in search): it becomes one of the reply's sources."""

    url: str
    title: str = ""


@dataclass(slots=True)
class RefusalDelta:
    text: str


@dataclass(slots=True)
class ToolCallDelta:
    """A fragment of a tool call's arguments as it arrives (``index``: the call's place in the step)."""

    index: int
    id: str
    name: str
    arguments: str


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


Event = TextDelta | ReasoningDelta | ReasoningSealed | Citation | RefusalDelta | ToolCallDelta | ToolCall | Finish


@dataclass(slots=True)
class RawEvent:
    """What a raw handler sees: the request body sent, or one decoded chunk received."""

    kind: str  # "request" or "chunk"
    payload: Any
    user_id: str = ""
    thread_id: str = ""
    agent_name: str = ""
    provider: str = ""
    model: str = ""


# Either (kind, payload) or (RawEvent); sync or async.
RawHandler = Callable[..., Any | Awaitable[Any]]


@dataclass(slots=True)
class ChatRequest:
    """One Chat Completions call, in the OpenAI wire shape."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = field(default_factory=list)
    response_format: dict[str, Any] | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    options: dict[str, Any] = field(default_factory=dict)  # provider-specific body fields (reasoning_effort...)
    raw: Callable[[str, Any], Awaitable[None]] | None = None  # sees ("request", body) and ("chunk", chunk)


@dataclass(frozen=True, slots=True)
class Inputs:
    """What a model takes besides text (from its provider's flags)."""

    images: bool = True
    pdf_files: bool = False
    fetches_urls: bool = True


class Model(Protocol):
    name: str
    provider: str

    def stream(self, request: ChatRequest) -> AsyncIterator[Event]: ...


async def whole_text(model: Model, request: ChatRequest, on_usage: Callable[[Usage], Awaitable[None]]) -> str:
    """The whole text of one side call (a title, a summary), streamed and joined; ``on_usage`` gets
    the usage the server reports."""
    text = ""
    async for event in model.stream(request):
        if isinstance(event, TextDelta):
            text += event.text
        elif isinstance(event, Finish) and event.usage is not None:
            await on_usage(event.usage)
    return text
