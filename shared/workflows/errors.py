"""What workflow code may see go wrong.

    WorkflowError          root
    ├── StepFailed         a step failed for good (its attempts spent); the code may catch it
    │   └── EventTimeout   no event came before wait_for_event's timeout
    ├── NonDeterminism     the code no longer matches the run's history (the definition changed)
    └── NonRetryable       raised by a step function: fail the step now, without more attempts
"""

from __future__ import annotations


class WorkflowError(Exception):
    """Root of the workflow errors."""


class StepFailed(WorkflowError):
    """A step ended in failure; ``step_id`` and ``step_name`` say which, ``kind`` how
    (failed, timeout, lost: its worker stopped on the last attempt, canceled)."""

    def __init__(self, step_id: str, step_name: str, message: str, kind: str = "failed") -> None:
        super().__init__(f"step {step_id} ({step_name}) {kind}: {message}")
        self.step_id = step_id
        self.step_name = step_name
        self.message = message
        self.kind = kind


class EventTimeout(StepFailed):
    """wait_for_event gave up: no event of that name came in time."""


class NonDeterminism(WorkflowError):
    """A replay met history the code does not produce any more; the run fails with this error."""


class NonRetryable(WorkflowError):
    """Raise it in a step function to fail the step at once, whatever attempts remain."""
