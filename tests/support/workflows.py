"""Workflows for the workflow tests (the app module tests.support.agents lists them).

Step functions count their runs in Redis (``test:wf:ran:<name>``), so a test can
tell how many times each one ran; ``hold`` waits until the test releases it, so a
test can kill a worker while a step runs.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import msgspec
import redis

from threadline.shared.storage.client import SyncClient, connect_sync
from threadline.shared.workflows.current import current_step
from threadline.shared.workflows.definition import Outcome, RetryPolicy, workflow
from threadline.shared.workflows.errors import EventTimeout, NonRetryable
from threadline.shared.workflows.step import Step


def _redis() -> SyncClient:
    return connect_sync(os.environ["REDIS_URL"])


def note(name: str) -> int:
    """Count one run of ``name`` (and remember which step key ran it)."""
    client = _redis()
    try:
        client.rpush(f"test:wf:keys:{name}", current_step().key)
        return int(client.incr(f"test:wf:ran:{name}"))
    finally:
        client.close()


def add(a: int, b: int) -> int:
    note("add")
    return a + b


async def slow_double(x: int) -> int:
    note(f"double-{x}")
    await asyncio.sleep(0.05)
    return 2 * x


def hold(name: str) -> str:
    """Run until the test sets test:wf:release:<name> (test:wf:started:<name> says it runs)."""
    note(name)
    client = _redis()
    try:
        client.set(f"test:wf:started:{name}", current_step().attempt)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if client.exists(f"test:wf:release:{name}"):
                    break
            except redis.ConnectionError:  # the server restarts (a fault test): the step goes on
                pass
            time.sleep(0.02)
        return f"{name} released"
    finally:
        client.close()


async def async_hold(name: str) -> str:
    """``hold`` as a coroutine (on the worker's loop)."""
    return await asyncio.to_thread(hold, name)


def concurrent(name: str) -> int:
    """Counts how many of these run at once (test:wf:max)."""
    note(name)
    client = _redis()
    try:
        now = client.incr("test:wf:now")
        client.eval("if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) then "
                    "redis.call('SET', KEYS[1], ARGV[1]) end", 1, "test:wf:max", now)
        time.sleep(0.3)
        client.decr("test:wf:now")
        return now
    finally:
        client.close()


def flaky(fail_times: int) -> str:
    """Fails its first ``fail_times`` attempts, recording when each one ran."""
    attempt = note("flaky")
    client = _redis()
    try:
        client.rpush("test:wf:flaky-at", int(time.time() * 1000))
    finally:
        client.close()
    if attempt <= fail_times:
        raise RuntimeError(f"flaky attempt {attempt}")
    return "steady"


def refuse() -> None:
    note("refuse")
    raise NonRetryable("this input can never work")


def record_outcome(outcome: Outcome) -> None:
    client = _redis()
    try:
        client.rpush("test:wf:outcomes", msgspec.json.encode({
            "runId": outcome.run_id, "workflow": outcome.workflow, "status": outcome.status,
            "result": outcome.result, "error": outcome.error, "user": outcome.user_id}))
    finally:
        client.close()


class Report(msgspec.Struct):
    city: str
    days: int


class AnswerArgs(msgspec.Struct):
    city: str


@workflow("support", on_complete=record_outcome)
async def support(step: Step, args: AnswerArgs) -> dict[str, Any]:
    """The reference's example: a thread, an agent's answer with tools, a structured object, a message."""
    thread_id = await step.create_thread(title=f"Weather in {args.city}")
    answer = await step.generate_text(thread_id, f"What is the weather in {args.city}?", agent="tools",
                                      max_steps=10)
    plan = await step.generate_object(thread_id, f"Turn this into a plan: {answer.text}", agent="planner",
                                      output=Report)
    saved = await step.save_message(thread_id, f"Plan: {plan.days} days in {plan.city}", agent_name="reporter")
    return {"threadId": thread_id, "answer": answer.text, "plan": msgspec.to_builtins(plan),
            "messageId": saved.message_id}


@workflow("child_sum")
async def child_sum(step: Step, args: list[int]) -> int:
    total = 0
    for x in args:
        total = await step.run(add, total, x)
    return total


@workflow("child_hold")
async def child_hold(step: Step, args: int) -> int:
    await step.run(hold, "child")
    return int(await step.run(add, args, 1))


@workflow("everything", on_complete=record_outcome, retry=RetryPolicy(attempts=3, backoff_s=0.2))
async def everything(step: Step, args: dict[str, Any]) -> dict[str, Any]:
    """One step of each kind, each of which a test may kill a worker in."""
    first = await step.run(add, 1, 2)
    held = await step.run(hold, "sync-hold")
    await step.sleep(args.get("sleep", 0.5))
    approval = await step.wait_for_event("approval", timeout_s=120)
    branches = await step.gather(step.run(async_hold, "branch-a"), step.run(slow_double, 2))
    child = await step.run_workflow("child_hold", first)
    thread_id = await step.create_thread(title="everything")
    answer = await step.generate_text(thread_id, "hello", agent="echo")
    return {"first": first, "held": held, "approval": approval, "branches": branches, "child": child,
            "threadId": thread_id, "answer": answer.text}


@workflow("retrying", on_complete=record_outcome)
async def retrying(step: Step, args: dict[str, Any]) -> str:
    return str(await step.run(flaky, args["failTimes"], retry=RetryPolicy(attempts=3, backoff_s=0.3, factor=2,
                                                                          jitter=0)))


@workflow("refusing", on_complete=record_outcome)
async def refusing(step: Step) -> None:
    await step.run(refuse)


@workflow("parallel", max_parallel=2)
async def parallel(step: Step, args: int) -> list[int]:
    return await step.gather(*(step.run(concurrent, f"p{i}") for i in range(args)))


@workflow("waiter")
async def waiter(step: Step, args: dict[str, Any]) -> Any:
    try:
        return await step.wait_for_event("approval", timeout_s=args.get("timeout"))
    except EventTimeout:
        return "nobody answered"


@workflow("sleeper")
async def sleeper(step: Step, args: float) -> str:
    await step.sleep(args)
    return await step.run(hold, "after-sleep")


@workflow("pooled", max_running=1)
async def pooled(step: Step, args: str) -> str:
    return await step.run(hold, args)


@workflow("changing")
async def changing(step: Step) -> str:
    client = _redis()  # a read outside any step: what the determinism rules forbid (a changed definition)
    changed = client.exists("test:wf:changed")
    client.close()
    if changed:
        return str(await step.run(slow_double, 5))
    return str(await step.run(hold, "changing"))


async def nap(seconds: float) -> str:
    note("nap")
    await asyncio.sleep(seconds)
    return "rested"


@workflow("slowpoke", on_complete=record_outcome)
async def slowpoke(step: Step) -> str:
    return str(await step.run(nap, 30, timeout_s=0.3, retry=RetryPolicy(attempts=2, backoff_s=0.1)))


@workflow("recall")
async def recall(step: Step) -> list[str]:
    thread_id = await step.create_thread(title="recall")
    await step.save_message(thread_id, "the ferry leaves at seven", role="user")
    await step.save_message(thread_id, "noted", agent_name="clerk")
    context = await step.fetch_context(thread_id, "when does the ferry leave?", agent="echo")
    return [m.text for m in context]


@workflow("parent_of_hold")
async def parent_of_hold(step: Step) -> int:
    return int(await step.run_workflow("child_hold", 1))


def huge() -> str:
    note("huge")
    return "x" * (2 << 20)


@workflow("internal", public=False)
async def internal(step: Step) -> str:
    return str(await step.run(huge, retry=RetryPolicy(attempts=3, backoff_s=0.1)))


@workflow("forever")
async def forever(step: Step) -> str:
    await step.run(hold, "forever")
    await step.wait_for_event("never")
    return "never"


@workflow("ask_once")
async def ask_once(step: Step, args: dict[str, Any]) -> str:
    """One agent answer, tried once: a refusal by the rate limits fails the run."""
    thread_id = await step.create_thread(title="ask once")
    answer = await step.generate_text(thread_id, "hello", agent="echo", retry=RetryPolicy(attempts=1))
    return answer.text


@workflow("ask_in_child")
async def ask_in_child(step: Step, args: dict[str, Any]) -> str:
    return str(await step.run_workflow("ask_once", {}))


WORKFLOWS = [support, child_sum, child_hold, everything, retrying, refusing, parallel, waiter, sleeper, pooled, changing,
             slowpoke, recall, parent_of_hold, internal, forever, ask_once, ask_in_child]
