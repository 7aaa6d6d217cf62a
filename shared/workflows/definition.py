"""Workflows are Python: an async function of a ``Step`` handle and its arguments.

An app module lists them in ``WORKFLOWS`` beside its agents; web, workers and the
Python API import the same definitions. A workflow's steps are journaled (see
shared.workflows.journal): the function runs again from the top after every step
and finds the results of the steps it already took, so it must be deterministic
(see the README's "Workflows" section for the rules).
"""

from __future__ import annotations

import importlib
import inspect
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import msgspec

from threadline.shared.app_module import declared_list
from threadline.shared.errors import BadRequest, NotFound


class RetryPolicy(msgspec.Struct, frozen=True, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """How a step is tried: ``attempts`` in all (1: once), waiting ``backoff_s`` after the first
    failure, ``factor`` times longer after each next one (at most ``max_backoff_s``), each wait
    moved at random by up to ``jitter`` of itself."""

    attempts: int = 3
    backoff_s: float = 1.0
    factor: float = 2.0
    max_backoff_s: float = 60.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if not 1 <= self.attempts <= 100:
            raise ValueError("attempts must be 1..100")
        if self.backoff_s < 0 or self.factor < 1 or self.max_backoff_s < 0 or not 0 <= self.jitter <= 1:
            raise ValueError("backoff_s >= 0, factor >= 1, max_backoff_s >= 0 and 0 <= jitter <= 1")

    def delay_ms(self, failed_attempt: int, rng: random.Random | None = None) -> int:
        """The wait before the attempt after ``failed_attempt`` (1-based)."""
        base = min(self.max_backoff_s, self.backoff_s * self.factor ** (failed_attempt - 1))
        spread = base * self.jitter
        return max(0, round((base + (rng or random).uniform(-spread, spread)) * 1000))


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a workflow's ``on_complete`` handler gets: how the run ended."""

    run_id: str
    workflow: str
    user_id: str
    status: str  # completed, failed or canceled
    result: Any = None  # what the workflow returned (as JSON values)
    error: dict[str, Any] | None = None  # {"code", "message"} when it did not complete
    args: Any = None


WorkflowFn = Callable[..., Awaitable[Any]]
OnComplete = Callable[[Outcome], Any]  # sync or async


@dataclass(frozen=True, slots=True)
class Workflow:
    """A workflow kind: its function, the type of its arguments and its limits.

    ``max_parallel``: steps of one run that run at once (more wait for a place);
    ``max_running``: runs of this kind at once, others wait queued (0: no limit);
    ``retry`` and ``step_timeout_s``: the defaults of its steps; ``public``: clients (WebSocket,
    HTTP) may start it, else only server code (the Python API, another workflow) does.
    """

    name: str
    fn: WorkflowFn
    args_type: Any = Any
    max_parallel: int = 16
    max_running: int = 0
    on_complete: OnComplete | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    step_timeout_s: float = 600.0
    takes_args: bool = True
    public: bool = True

    def parse_args(self, raw: Any) -> Any:
        """The arguments converted to the workflow's type (BadRequest saying what is wrong)."""
        if not self.takes_args:
            return None
        try:
            return msgspec.convert(raw, self.args_type)
        except msgspec.ValidationError as exc:
            raise BadRequest(f"workflow {self.name!r}: bad args: {exc}") from None


def workflow(name: str | None = None, *, max_parallel: int = 16, max_running: int = 0,
             on_complete: OnComplete | None = None, retry: RetryPolicy | None = None,
             step_timeout_s: float = 600.0, public: bool = True) -> Callable[[WorkflowFn], Workflow]:
    """Make a Workflow of ``async def fn(step: Step, args: SomeType)`` (or ``fn(step)``)."""

    def wrap(fn: WorkflowFn) -> Workflow:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"workflow {fn.__name__} must be an async function")
        params = list(inspect.signature(fn).parameters.values())
        if len(params) not in (1, 2):
            raise TypeError(f"workflow {fn.__name__} must be fn(step) or fn(step, args)")
        hints = inspect.get_annotations(fn, eval_str=True)
        args_type = hints.get(params[1].name, Any) if len(params) == 2 else Any
        if not 1 <= max_parallel <= 1000 or max_running < 0:
            raise ValueError("max_parallel must be 1..1000 and max_running >= 0")
        return Workflow(name or fn.__name__, fn, args_type, max_parallel, max_running, on_complete,
                        retry or RetryPolicy(), step_timeout_s, len(params) == 2, public)

    return wrap


@cache
def load_workflows(app_module: str) -> dict[str, Workflow]:
    """The workflows of an app module (its WORKFLOWS list, else every Workflow it holds), by name."""
    return {w.name: w for w in declared_list(app_module, "WORKFLOWS", Workflow, every=True)}


def workflow_named(app_module: str, name: str) -> Workflow:
    """The named workflow; NotFound naming the known ones when there is none."""
    known = load_workflows(app_module)
    try:
        return known[name]
    except KeyError:
        raise NotFound(f"unknown workflow {name!r}; known: {', '.join(known) or 'none'}") from None


def function_path(fn: Callable[..., Any]) -> str:
    """``module:qualname`` of a step function, which every worker can import; a lambda or a nested
    function cannot be found again by another process, so it is refused here."""
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not module or "<" in qualname:
        raise TypeError(f"step functions must be defined at module level (got {qualname or fn!r})")
    return f"{module}:{qualname}"


def function_at(path: str) -> Callable[..., Any]:
    module, _, qualname = path.partition(":")
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target  # type: ignore[no-any-return]

