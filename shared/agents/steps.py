"""Steps under the app's control, as in the AI SDK: ``stop_when`` ends a reply after a step whose
tools ran (a step count, a tool called, any predicate over the steps so far), and
``prepare_step`` changes the next model call (its model, active tools, instructions, messages,
temperature, max tokens). ``max_steps`` stays the hard bound."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from threadline.shared.agents.request import RunContext
    from threadline.shared.records import Message, ToolCallPart, ToolResultPart


@dataclass(frozen=True, slots=True)
class StepResult:
    """A finished step that called tools: what the model said and called, and what the tools gave."""

    number: int  # 0 for the first model call
    text: str
    tool_calls: list[ToolCallPart]
    tool_results: list[ToolResultPart]


StopCondition = Callable[[Sequence[StepResult]], "bool | Awaitable[bool]"]


@dataclass(frozen=True, slots=True)
class StepInput:
    """What ``prepare_step`` sees before a model call."""

    run: RunContext
    number: int  # of the step about to run, from 0
    steps: Sequence[StepResult]  # the steps before it
    messages: list[Message]  # what the model is about to see (after the context handler and the budget)


@dataclass(slots=True)
class StepPlan:
    """``prepare_step``'s changes to one model call (None: as the agent has it)."""

    model: str | None = None  # a model of the agent's provider
    active_tools: list[str] | None = None  # names of the agent's tools this call may use
    instructions: str | None = None
    messages: list[Message] | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    options: dict[str, Any] = field(default_factory=dict)  # body fields over the agent's provider_options


PrepareStep = Callable[[StepInput], "StepPlan | Awaitable[StepPlan | None] | None"]


def step_count_is(count: int) -> StopCondition:
    """Stop once ``count`` steps have run."""
    return lambda steps: len(steps) >= count


def has_tool_call(*names: str) -> StopCondition:
    """Stop after a step that called one of these tools."""
    return lambda steps: bool(steps) and any(c.tool_name in names for c in steps[-1].tool_calls)
