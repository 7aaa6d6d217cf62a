"""Replay passes against a journal written by hand (pure logic: no Redis, no workers): the names
steps get, what a pass decides, and the mistakes of workflow code it catches."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest

from threadline.shared.workflows.definition import workflow
from threadline.shared.workflows.journal import StepView
from threadline.shared.workflows.replay import Pass, replay
from threadline.shared.workflows.step import Step

pytestmark = pytest.mark.anyio


def one(x: int) -> int:
    return x


def two(x: int) -> int:
    return x


@workflow("branches")
async def branches(step: Step) -> list[Any]:
    async def twice(x: int) -> int:
        return int(await step.run(one, x)) + int(await step.run(two, x))

    return await step.gather(twice(1), twice(2))


@workflow("fan", max_parallel=2)
async def fan(step: Step) -> list[Any]:
    return await step.gather(*(step.run(one, i) for i in range(5)))


@workflow("racy")
async def racy(step: Step) -> list[Any]:
    return list(await asyncio.gather(step.run(one, 1), step.run(two, 2)))


@workflow("sleepy")
async def sleepy(step: Step) -> int:
    await asyncio.sleep(3600)
    return 1


@workflow("short")
async def short(step: Step) -> int:
    return int(await step.run(one, 1))


def done(step_id: str, name: str, seq: int) -> StepView:
    return StepView(id=step_id, kind="job", name=name, status="completed", seq=seq, attempt=1)


async def pass_of(wf: Any, steps: list[StepView], results: dict[str, bytes] | None = None) -> list[dict[str, Any]]:
    p = Pass(wf, "w-test", {s.id: s for s in steps}, results or {})
    return await replay(wf, p, Step(p, "w-test", "alice", "threadline.example"), None)


async def test_parallel_branches_name_their_steps_by_place_not_by_finishing_order() -> None:
    ops = await pass_of(branches, [])
    assert [o["id"] for o in ops] == ["0.0.0", "0.1.0"]
    # the second branch's first step finished first: only that branch goes on, under its own name
    running = StepView(id="0.0.0", kind="job", name="one", status="running", seq=1, attempt=1)
    ops = await pass_of(branches, [running, done("0.1.0", "one", 2)], {"0.1.0": b"2"})
    assert [(o["id"], o["name"]) for o in ops] == [("0.1.1", "two")]


async def test_a_run_completes_when_every_branch_has_its_results() -> None:
    steps = [done("0.0.0", "one", 1), done("0.1.0", "one", 2), done("0.1.1", "two", 3), done("0.0.1", "two", 4)]
    ops = await pass_of(branches, steps, {"0.0.0": b"1", "0.0.1": b"1", "0.1.0": b"2", "0.1.1": b"2"})
    assert ops == [{"op": "finish", "status": "completed", "result": "[2,4]"}]


async def test_job_steps_beyond_max_parallel_wait_for_a_place() -> None:
    ops = await pass_of(fan, [])
    assert [o["id"] for o in ops] == ["0.0.0", "0.1.0"]
    steps = [done("0.0.0", "one", 1), StepView(id="0.1.0", kind="job", name="one", status="running", seq=2)]
    assert [o["id"] for o in await pass_of(fan, steps, {"0.0.0": b"0"})] == ["0.2.0"]


async def test_asyncio_gather_of_steps_is_refused_with_a_clear_error() -> None:
    (op,) = await pass_of(racy, [])
    error = msgspec.json.decode(op["error"])
    assert op["status"] == "failed" and "step.gather" in error["message"]


async def test_awaiting_anything_but_a_step_fails_the_run() -> None:
    (op,) = await pass_of(sleepy, [])
    error = msgspec.json.decode(op["error"])
    assert error["code"] == "nondeterminism" and "awaited something that is not a step" in error["message"]


async def test_history_the_code_no_longer_reaches_is_a_changed_definition() -> None:
    steps = [done("0", "one", 1), done("1", "one", 2)]
    (op,) = await pass_of(short, steps, {"0": b"1", "1": b"1"})
    error = msgspec.json.decode(op["error"])
    assert error["code"] == "nondeterminism" and "step 1 (job 'one') that the code no longer reaches" in error["message"]


async def test_a_failed_step_raises_step_failed_in_the_workflow() -> None:
    failed = StepView(id="0", kind="job", name="one", status="failed", seq=1, error="boom", error_kind="failed")
    (op,) = await pass_of(short, [failed])
    error = msgspec.json.decode(op["error"])
    assert error == {"code": "step_failed", "message": "step 0 (one) failed: boom"}
