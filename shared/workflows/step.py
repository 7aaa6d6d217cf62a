"""The ``step`` handle a workflow function gets: every effect of a workflow goes through it.

Each call is one step of the run's journal: its result is recorded once and every
later replay gets it back instead of doing it again. A step that fails for good
raises StepFailed in the workflow (catch it to go another way).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec

from threadline.shared.agents import agent_named
from threadline.shared.records import Message
from threadline.shared.workflows.definition import (
    RetryPolicy,
    Workflow,
    function_path,
    workflow_named,
)
from threadline.shared.workflows.journal import on_complete_input
from threadline.shared.workflows.replay import Pass
from threadline.shared.workflows.results import GeneratedText

T = TypeVar("T")
_encode = msgspec.json.Encoder().encode
MAX_SLEEP_S = 366 * 86400


class Step:
    """Steps of one run: functions as jobs, agent operations, sleeps, events, parallel branches,
    child workflows. ``run_id`` and ``user_id`` name the run and whom it acts for."""

    def __init__(self, p: Pass, run_id: str, user_id: str, app_module: str) -> None:
        self._pass = p
        self._app_module = app_module
        self.run_id = run_id
        self.user_id = user_id

    @property
    def workflow(self) -> Workflow:
        return self._pass.wf

    async def _job(self, name: str, spec: dict[str, Any], retry: RetryPolicy | None, timeout_s: float | None,
                   result_type: Any) -> Any:
        policy = retry or self.workflow.retry
        spec = {**spec, "retry": policy, "timeoutS": timeout_s or self.workflow.step_timeout_s}
        raw = await self._pass.step("job", name, attempts=policy.attempts, input=_encode(spec))
        return msgspec.json.decode(raw, type=result_type)

    async def run(self, fn: Callable[..., Any], *args: Any, name: str | None = None,
                  retry: RetryPolicy | None = None, timeout_s: float | None = None, result_type: Any = Any,
                  **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` (sync or async, defined at module level; arguments and result
        are JSON) as a job on any worker, tried per ``retry`` (the workflow's by default), each
        attempt stopped after ``timeout_s``. ``current_step()`` in it gives the step's stable key."""
        spec = {"op": "call", "fn": function_path(fn), "args": list(args), "kwargs": kwargs}
        return await self._job(name or str(getattr(fn, "__name__", "call")), spec, retry, timeout_s, result_type)

    # -- agent operations: each uses its step's key, so an attempt after a crash does it once ----

    async def create_thread(self, *, title: str = "", summary: str = "", metadata: dict[str, Any] | None = None,
                            retry: RetryPolicy | None = None) -> str:
        """A new thread of the run's user; its id."""
        spec = {"op": "create_thread", "title": title, "summary": summary, "metadata": metadata or {}}
        return str(await self._job("create_thread", spec, retry, None, str))

    async def save_message(self, thread_id: str, text: str, *, role: str = "assistant",
                           agent_name: str | None = None, retry: RetryPolicy | None = None) -> Message:
        """Save one message in a thread of the run's user (seen live by every tab watching it)."""
        spec = {"op": "save_message", "threadId": thread_id, "text": text, "role": role, "agentName": agent_name}
        return await self._job("save_message", spec, retry, None, Message)  # type: ignore[no-any-return]

    async def generate_text(self, thread_id: str, prompt: str, *, agent: str | None = None,
                            max_steps: int | None = None, model: str | None = None, retry: RetryPolicy | None = None,
                            timeout_s: float | None = None) -> GeneratedText:
        """The agent answers ``prompt`` in the thread (with its tools, up to ``max_steps`` model calls),
        streamed live to every tab watching the thread."""
        spec = {"op": "generate_text", "threadId": thread_id, "prompt": prompt, "agent": agent,
                "maxSteps": max_steps, "model": model}
        return await self._job("generate_text", spec, retry, timeout_s, GeneratedText)  # type: ignore[no-any-return]

    async def generate_object(self, thread_id: str, prompt: str, *, agent: str | None = None,
                              output: type[T] | None = None, retry: RetryPolicy | None = None,
                              timeout_s: float | None = None) -> Any:
        """The agent's structured answer to ``prompt``: an ``output`` (a msgspec type at module level),
        or of the agent's own output type."""
        kind = output if output is not None else agent_named(self._app_module, agent).output
        if kind is None:
            raise TypeError(f"agent {agent!r} has no output type; pass output=")
        spec = {"op": "generate_object", "threadId": thread_id, "prompt": prompt, "agent": agent,
                "output": function_path(output) if output is not None else None}
        return await self._job("generate_object", spec, retry, timeout_s, kind)

    async def fetch_context(self, thread_id: str, prompt: str, *, agent: str | None = None,
                            retry: RetryPolicy | None = None) -> list[Message]:
        """The messages the agent's context options would give the model for ``prompt``."""
        spec = {"op": "fetch_context", "threadId": thread_id, "prompt": prompt, "agent": agent}
        return await self._job("fetch_context", spec, retry, None, list[Message])  # type: ignore[no-any-return]

    # -- time, events, branches, children ------------------------------------------------------

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (a timer in Redis: no worker is held, and a restart does not reset it)."""
        if not 0 <= seconds <= MAX_SLEEP_S or math.isnan(seconds):
            raise ValueError(f"sleep takes 0..{MAX_SLEEP_S} seconds")
        await self._pass.step("sleep", "sleep", delayMs=round(seconds * 1000))

    async def wait_for_event(self, name: str, *, timeout_s: float | None = None, result_type: Any = Any) -> Any:
        """The payload of the next event ``name`` sent to this run (also one sent before it waits);
        EventTimeout when none comes within ``timeout_s``."""
        extra: dict[str, Any] = {"event": name}
        if timeout_s is not None:
            extra["timeoutMs"] = max(0, round(timeout_s * 1000))
        raw = await self._pass.step("event", name, **extra)
        return msgspec.json.decode(raw, type=result_type)

    async def gather(self, *aws: Awaitable[Any], return_exceptions: bool = False) -> list[Any]:
        """Run steps (or sequences of steps) at once; their results in order. Use this, not
        asyncio.gather: each awaitable gets a stable place in the run's history."""
        tasks = self._pass.spawn(aws)
        return list(await asyncio.gather(*tasks, return_exceptions=return_exceptions))

    async def run_workflow(self, workflow: str | Workflow, args: Any = None, *, result_type: Any = Any) -> Any:
        """Start a child run (of the same user) and wait for its result; StepFailed if it fails or
        is canceled. Canceling this run cancels the child."""
        child = workflow if isinstance(workflow, Workflow) else workflow_named(self._app_module, workflow)
        raw_args = _encode(child.parse_args(args)).decode()
        spec = {"name": child.name, "args": raw_args, "maxRunning": child.max_running,
                "onComplete": on_complete_input(child)}
        raw = await self._pass.step("child", child.name, child=spec)
        return msgspec.json.decode(raw, type=result_type)
