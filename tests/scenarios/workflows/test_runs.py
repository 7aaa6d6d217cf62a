"""Workflows end to end: real generation workers run their passes and steps against Valkey."""

from __future__ import annotations

import itertools

import msgspec
import pytest

from tests.scenarios.workflows.conftest import counts, release, wait_for, wait_started
from tests.support.stack import Stack
from threadline import Threadline

pytestmark = pytest.mark.anyio


def outcomes(stack: Stack, run_id: str) -> list[dict[str, object]]:
    """What onComplete got for this run (an earlier test's run may still be ending)."""
    client = stack.store()
    try:
        found = [msgspec.json.decode(o) for o in client.lrange("test:wf:outcomes", 0, -1)]
        return [o for o in found if o["runId"] == run_id]
    finally:
        client.close()


async def test_the_reference_example_runs_end_to_end_with_tools_an_object_and_a_saved_message(
        tl: Threadline, flow: Stack) -> None:
    flow.script({"kind": "tools", "calls": [{"name": "weather", "arguments": '{"city": "Oslo"}'}]},
                {"kind": "text", "chunks": ["Sunny ", "in Oslo."]},
                {"kind": "text", "chunks": ['{"city": "Oslo", ', '"days": 3}']})
    run_id = await tl.start_workflow("support", "alice", {"city": "Oslo"})
    view = await tl.wait_workflow(run_id, 30)
    assert view.status == "completed", view.error
    result = msgspec.json.decode(view.result or b"null")
    assert result["answer"] == "Sunny in Oslo."
    assert result["plan"] == {"city": "Oslo", "days": 3}
    assert [s.name for s in view.steps] == ["create_thread", "generate_text", "generate_object", "save_message",
                                            "onComplete"]
    thread = await tl.continue_thread(result["threadId"], "alice")
    page = await thread.messages(num_items=50)
    texts = [(m.role, m.text) for m in reversed(page.page) if not m.is_tool]
    assert texts[0] == ("user", "What is the weather in Oslo?")
    assert ("assistant", "Sunny in Oslo.") in texts
    assert texts[-1] == ("assistant", "Plan: 3 days in Oslo")
    assert thread.thread.title == "Weather in Oslo"
    await wait_for(tl, run_id, lambda v: v.steps[-1].status == "completed")
    assert [(o["status"], o["runId"]) for o in outcomes(flow, run_id)] == [("completed", run_id)]


async def test_a_failing_step_is_tried_again_with_backoff(tl: Threadline, flow: Stack) -> None:
    run_id = await tl.start_workflow("retrying", "alice", {"failTimes": 2})
    view = await tl.wait_workflow(run_id, 30)
    assert view.status == "completed"
    assert msgspec.json.decode(view.result or b"") == "steady"
    (step, _) = view.steps
    assert (step.attempt, step.attempts, step.last_error) == (3, 3, "RuntimeError: flaky attempt 2")
    client = flow.store()
    at = [int(t) for t in client.lrange("test:wf:flaky-at", 0, -1)]
    client.close()
    gaps = [b - a for a, b in itertools.pairwise(at)]
    assert gaps[0] >= 300 and gaps[1] >= 600, gaps  # 0.3 s, then twice that (no jitter)


async def test_a_step_out_of_attempts_fails_the_run_and_calls_on_complete(tl: Threadline, flow: Stack) -> None:
    run_id = await tl.start_workflow("retrying", "alice", {"failTimes": 5})
    view = await tl.wait_workflow(run_id, 30)
    assert view.status == "failed"
    assert view.error is not None and view.error["code"] == "step_failed"
    assert "flaky attempt 3" in view.error["message"]
    assert counts(flow, "flaky") == {"flaky": 3}
    await wait_for(tl, run_id, lambda v: v.steps[-1].status == "completed")
    (outcome,) = outcomes(flow, run_id)
    assert outcome["status"] == "failed" and outcome["runId"] == run_id
    assert "flaky attempt 3" in outcome["error"]["message"]  # type: ignore[index]


async def test_a_non_retryable_error_fails_the_step_at_once(tl: Threadline, flow: Stack) -> None:
    run_id = await tl.start_workflow("refusing", "alice")
    view = await tl.wait_workflow(run_id, 30)
    assert view.status == "failed" and "this input can never work" in (view.error or {})["message"]
    assert counts(flow, "refuse") == {"refuse": 1}


async def test_parallel_steps_run_at_once_up_to_the_workflows_limit(tl: Threadline, flow: Stack) -> None:
    run_id = await tl.start_workflow("parallel", "alice", 5)
    view = await tl.wait_workflow(run_id, 30)
    assert view.status == "completed"
    assert len(msgspec.json.decode(view.result or b"")) == 5
    assert [s.id for s in view.steps] == ["0.0.0", "0.1.0", "0.2.0", "0.3.0", "0.4.0"]
    client = flow.store()
    most = int(client.get("test:wf:max") or 0)
    client.close()
    assert most == 2  # two at once (max_parallel), never more
    assert counts(flow, *(f"p{i}" for i in range(5))) == {f"p{i}": 1 for i in range(5)}


async def test_an_event_reaches_the_step_waiting_for_it(tl: Threadline, flow: Stack) -> None:
    run_id = await tl.start_workflow("waiter", "alice", {"timeout": 60})
    await wait_for(tl, run_id, lambda v: v.steps and v.steps[0].status == "waiting")
    assert await tl.send_workflow_event(run_id, "approval", {"by": "bob"}) == "0"
    view = await tl.wait_workflow(run_id, 30)
    assert msgspec.json.decode(view.result or b"") == {"by": "bob"}


async def test_an_event_sent_before_the_run_waits_is_kept_for_it(tl: Threadline, flow: Stack) -> None:
    run_id = await tl.start_workflow("sleeper", "alice", 0.5)
    # the run sleeps, then holds; an event sent now is kept, not lost
    events_run = await tl.start_workflow("waiter", "alice", {"timeout": 60}, key="early")
    assert await tl.send_workflow_event(events_run, "approval", "early bird") in ("", "0")
    view = await tl.wait_workflow(events_run, 30)
    assert msgspec.json.decode(view.result or b"") == "early bird"
    release(flow, "after-sleep")
    assert (await tl.wait_workflow(run_id, 30)).status == "completed"


async def test_no_event_in_time_raises_event_timeout_in_the_workflow(tl: Threadline, flow: Stack) -> None:
    run_id = await tl.start_workflow("waiter", "alice", {"timeout": 0.3})
    view = await tl.wait_workflow(run_id, 30)
    assert msgspec.json.decode(view.result or b"") == "nobody answered"
    assert (view.steps[0].status, view.steps[0].error_kind) == ("failed", "timeout")


async def test_cancel_stops_a_running_step_and_ends_the_run(tl: Threadline, flow: Stack) -> None:
    run_id = await tl.start_workflow("forever", "alice")
    # this run's own step (the marker alone may be an earlier test's canceled run whose step began late)
    await wait_for(tl, run_id, lambda v: bool(v.steps) and v.steps[0].status == "running")
    wait_started(flow, "forever")
    assert await tl.cancel_workflow(run_id, "alice")
    view = await tl.workflow_run(run_id)
    assert view.status == "canceled"
    assert view.steps[0].status == "canceled"
    assert not await tl.cancel_workflow(run_id)  # it has ended
    release(flow, "forever")  # the step's thread ends; its result is dropped
    await tl.wait_workflow(run_id, 5)
    assert (await tl.workflow_run(run_id)).status == "canceled"


async def test_a_child_workflow_runs_and_its_result_returns(tl: Threadline, flow: Stack) -> None:
    run_id = await tl.start_workflow("child_sum", "alice", [1, 2, 3])
    view = await tl.wait_workflow(run_id, 30)
    assert msgspec.json.decode(view.result or b"") == 6


async def test_the_work_pool_runs_one_run_of_a_kind_at_a_time(tl: Threadline, flow: Stack) -> None:
    first = await tl.start_workflow("pooled", "alice", "pool-a")
    second = await tl.start_workflow("pooled", "alice", "pool-b")
    wait_started(flow, "pool-a")
    assert (await tl.workflow_run(second)).status == "queued"
    release(flow, "pool-a")
    assert (await tl.wait_workflow(first, 30)).status == "completed"
    wait_started(flow, "pool-b")
    release(flow, "pool-b")
    assert (await tl.wait_workflow(second, 30)).status == "completed"


async def test_a_changed_definition_replaying_old_history_fails_with_a_clear_error(
        tl: Threadline, flow: Stack) -> None:
    run_id = await tl.start_workflow("changing", "alice")
    wait_started(flow, "changing")
    client = flow.store()
    client.set("test:wf:changed", 1)  # the code now takes another step first
    client.close()
    release(flow, "changing")
    view = await tl.wait_workflow(run_id, 30)
    assert view.status == "failed"
    assert view.error is not None and view.error["code"] == "nondeterminism"
    assert "step 0 is job 'hold' in the run's history, but the code now takes job 'slow_double'" in \
        view.error["message"]
    assert counts(flow, "double-5") == {"double-5": 0}


async def test_a_start_with_the_same_key_gets_the_first_run(tl: Threadline, flow: Stack) -> None:
    first = await tl.start_workflow("child_sum", "alice", [1], key="k1")
    assert await tl.start_workflow("child_sum", "alice", [1], key="k1") == first
    assert await tl.start_workflow("child_sum", "bob", [1], key="k1") != first  # keys are per user
    await tl.wait_workflow(first, 30)
    runs = await tl.workflow_runs("alice")
    assert first in [r.run_id for r in runs.page]


async def test_another_users_run_is_not_found(tl: Threadline, flow: Stack) -> None:
    from threadline.shared.errors import NotFound

    run_id = await tl.start_workflow("child_sum", "alice", [1])
    with pytest.raises(NotFound):
        await tl.workflow_run(run_id, "mallory")
    with pytest.raises(NotFound):
        await tl.cancel_workflow(run_id, "mallory")
    with pytest.raises(NotFound):
        await tl.send_workflow_event(run_id, "approval", 1, "mallory")


async def test_an_attempt_past_its_timeout_is_stopped_and_tried_again(tl: Threadline, flow: Stack) -> None:
    run_id = await tl.start_workflow("slowpoke", "alice")
    view = await tl.wait_workflow(run_id, 30)
    assert view.status == "failed"
    step = view.steps[0]
    assert (step.attempt, step.error_kind, step.error) == (2, "timed_out", "timed out after 0.3 s")
    assert step.last_error == "timed out after 0.3 s"
    assert counts(flow, "nap") == {"nap": 2}


async def test_fetch_context_gives_what_the_agent_would_see(tl: Threadline, flow: Stack) -> None:
    run_id = await tl.start_workflow("recall", "alice")
    view = await tl.wait_workflow(run_id, 30)
    assert view.status == "completed", view.error
    texts = msgspec.json.decode(view.result or b"")
    assert "the ferry leaves at seven" in texts and "noted" in texts


async def test_canceling_a_parent_cancels_its_child_and_the_childs_step(tl: Threadline, flow: Stack) -> None:
    run_id = await tl.start_workflow("parent_of_hold", "alice")
    wait_started(flow, "child")
    view = await tl.workflow_run(run_id)
    child_id = view.steps[0].child
    assert child_id == f"{run_id}-0" and (await tl.workflow_run(child_id)).status == "running"
    assert await tl.cancel_workflow(run_id)
    child = await tl.workflow_run(child_id)
    assert child.status == "canceled" and child.error == {"code": "canceled", "message": "its parent run ended"}
    assert [s.status for s in child.steps] == ["canceled"]
    release(flow, "child")


async def test_a_result_too_big_to_journal_fails_its_step_without_retrying(tl: Threadline, flow: Stack) -> None:
    run_id = await tl.start_workflow("internal", "alice")  # server code may start a private workflow
    view = await tl.wait_workflow(run_id, 30)
    assert view.status == "failed" and "too big to journal" in (view.steps[0].error or "")
    assert counts(flow, "huge") == {"huge": 1}
