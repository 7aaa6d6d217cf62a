"""One replay pass: the workflow function runs from the top against the journal.

A step the journal has settled returns its result (or raises its error) at once,
without yielding; a step it does not have yet is written down as a decision, and
the branch that asked for it waits for good. When every branch waits (or the
function returned), the pass ends with its decisions, which the journal applies
only if nothing changed meanwhile (shared.workflows.journal.Journal.commit).

Steps are named by where they are in the code's flow, not by when they ran: the
n-th step of a branch is ``n``, and ``step.gather`` gives each of its awaitables a
branch of its own (``k.i.``). So the same code meets the same names on every
pass, whichever parallel step finished first.
"""

from __future__ import annotations

import asyncio
import contextvars
from dataclasses import dataclass, field
from typing import Any, NoReturn

import msgspec

from threadline.shared.workflows.definition import Workflow
from threadline.shared.workflows.errors import (
    EventTimeout,
    NonDeterminism,
    StepFailed,
    WorkflowError,
)
from threadline.shared.workflows.journal import StepView

SETTLE_ROUNDS = 20  # loop turns with no progress after which every branch waits
JOB_STATES = {"scheduled", "running", "retrying"}


@dataclass(slots=True)
class Branch:
    """A sequence of steps: the workflow itself, or one awaitable of a step.gather."""

    path: str
    task: asyncio.Task[Any] | None = None
    taken: int = 0

    def next_id(self) -> str:
        self.taken += 1
        return f"{self.path}{self.taken - 1}"


_BRANCH: contextvars.ContextVar[Branch] = contextvars.ContextVar("workflow_branch")


@dataclass(slots=True)
class Pass:
    """The state of one replay pass over a run's journal."""

    wf: Workflow
    run_id: str
    steps: dict[str, StepView]
    results: dict[str, bytes]
    ops: list[dict[str, Any]] = field(default_factory=list)
    visited: set[str] = field(default_factory=set)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    calls: int = 0
    blocked: int = 0
    jobs: int = 0  # job steps holding a place (of max_parallel)
    fatal: NonDeterminism | None = None
    closed: bool = False

    def __post_init__(self) -> None:
        self.jobs = sum(1 for s in self.steps.values() if s.kind == "job" and s.status in JOB_STATES
                        and s.id != "onComplete")

    def branch(self) -> Branch:
        branch = _BRANCH.get(None)
        if branch is None or branch.task is not asyncio.current_task():
            raise WorkflowError("steps that run at once must be started with step.gather (with asyncio.gather "
                                "or create_task they have no stable place in the run's history)")
        return branch

    async def step(self, kind: str, name: str, *, attempts: int = 1, input: bytes | None = None,
                   **extra: Any) -> bytes:
        """The result of the next step of the current branch (raw JSON), once the journal has it."""
        step_id = self.branch().next_id()
        self.calls += 1
        known = self.steps.get(step_id)
        if known is not None:
            if known.kind != kind or known.name != name:
                self.fatal = NonDeterminism(
                    f"workflow {self.wf.name!r}, run {self.run_id}: step {step_id} is {known.kind} "
                    f"{known.name!r} in the run's history, but the code now takes {kind} {name!r} there; "
                    f"the workflow's definition changed while this run was in flight")
                raise self.fatal
            self.visited.add(step_id)
            if known.status == "completed":
                return self.results.get(step_id, b"null")
            if known.status in ("failed", "canceled"):
                error = EventTimeout if known.error_kind == "timeout" else StepFailed
                raise error(step_id, name, known.error or known.status, known.error_kind or known.status)
            await self._wait()
        if self.closed or (kind == "job" and self.jobs >= self.wf.max_parallel):
            await self._wait()  # a place frees when a running step ends: the next pass takes it
        if kind == "job":
            self.jobs += 1
        op: dict[str, Any] = {"op": "step", "id": step_id, "kind": kind, "name": name, "attempts": attempts, **extra}
        if "child" in extra:  # the child's id comes from its place: a pass that runs again names the same child
            op["child"] = {**extra["child"], "runId": f"{self.run_id}-{step_id}"}
        if input is not None:
            op["input"] = input.decode()
        self.ops.append(op)
        self.visited.add(step_id)
        await self._wait()

    async def _wait(self) -> NoReturn:
        self.blocked += 1
        await asyncio.get_running_loop().create_future()  # never set: the pass ends while it waits
        raise AssertionError("unreachable")

    def spawn(self, aws: tuple[Any, ...]) -> list[asyncio.Task[Any]]:
        """Tasks for the awaitables of a step.gather, each a branch of its own."""
        parent = self.branch()
        k = parent.next_id()
        tasks = []
        loop = asyncio.get_running_loop()
        for i, aw in enumerate(aws):
            branch = Branch(f"{k}.{i}.")
            ctx = contextvars.copy_context()
            ctx.run(_BRANCH.set, branch)
            task = loop.create_task(_awaited(aw), context=ctx)
            branch.task = task
            self.tasks.append(task)
            tasks.append(task)
        return tasks


async def _awaited(aw: Any) -> Any:
    return await aw


async def replay(wf: Workflow, p: Pass, step: Any, args: Any) -> list[dict[str, Any]]:
    """Run the workflow once against the journal; the decisions to commit."""
    root = Branch("")
    ctx = contextvars.copy_context()
    ctx.run(_BRANCH.set, root)
    task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(_awaited(
        wf.fn(step, args) if wf.takes_args else wf.fn(step)), context=ctx)
    root.task = task
    p.tasks.append(task)
    await _settle(task, p)
    if not task.done():
        p.closed = True
        for t in p.tasks:
            t.cancel()
        await asyncio.gather(*p.tasks, return_exceptions=True)
        if p.fatal is not None:
            return [failed("nondeterminism", str(p.fatal))]
        if p.blocked == 0:
            return [failed("nondeterminism", f"workflow {wf.name!r} awaited something that is not a step "
                                              "(I/O, asyncio.sleep...); do that inside step.run")]
        return p.ops
    for t in p.tasks:  # branches of a gather that failed fast
        t.cancel()
    if p.fatal is not None:
        return [failed("nondeterminism", str(p.fatal))]
    exc = task.exception()
    if exc is not None:
        if isinstance(exc, StepFailed):
            return [failed("step_failed", str(exc))]
        return [failed("error", f"{type(exc).__name__}: {exc}")]
    missed = sorted(set(p.steps) - p.visited - {"onComplete"}, key=lambda s: p.steps[s].seq)
    if missed:
        first = p.steps[missed[0]]
        return [failed("nondeterminism", f"workflow {wf.name!r}, run {p.run_id}: the run's history has step "
                                          f"{first.id} ({first.kind} {first.name!r}) that the code no longer "
                                          f"reaches; the workflow's definition changed while this run was in flight")]
    try:
        result = msgspec.json.encode(task.result())
    except (TypeError, msgspec.EncodeError) as exc:
        return [failed("error", f"the workflow's result is not JSON: {exc}")]
    return [{"op": "finish", "status": "completed", "result": result.decode()}]


def failed(code: str, message: str) -> dict[str, Any]:
    return {"op": "finish", "status": "failed", "error": msgspec.json.encode({"code": code, "message": message}).decode()}


async def _settle(task: asyncio.Task[Any], p: Pass) -> None:
    """Let the workflow run until it returned or every branch waits."""
    idle, seen = 0, None
    while not task.done() and idle < SETTLE_ROUNDS:
        await asyncio.sleep(0)
        marker = (p.calls, p.blocked, len(p.tasks), sum(t.done() for t in p.tasks))
        if marker != seen:
            seen, idle = marker, 0
        else:
            idle += 1
