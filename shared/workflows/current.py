"""The step a workflow job is running, for the step's own code (``current_step()``)."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StepInfo:
    """The step a job runs: ``key`` is the same for every attempt (an idempotency key for effects)."""

    run_id: str
    step_id: str
    attempt: int
    user_id: str
    limited: bool = False  # a run a client started: agent steps count in the user's rate limits

    @property
    def key(self) -> str:
        return f"{self.run_id}/{self.step_id}"


_CURRENT: contextvars.ContextVar[StepInfo] = contextvars.ContextVar("workflow_step")


def current_step() -> StepInfo:
    """The step being run (inside a step function); LookupError elsewhere."""
    return _CURRENT.get()


def running(info: StepInfo) -> None:
    """Mark ``info`` as the step this task runs (the step job, before the step's code)."""
    _CURRENT.set(info)
