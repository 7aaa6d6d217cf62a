"""The journal's scripts against a real Valkey, without workers: who takes a timer, what a lease
does, what a stale pass or a stale attempt may still write, retention."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from unittest.mock import ANY

import pytest

from tests.support.workflows import child_sum, pooled, waiter
from threadline.shared import keys
from threadline.shared.errors import Conflict, NotFound
from threadline.shared.storage.client import connect
from threadline.shared.storage.scripts import Scripts, lua
from threadline.shared.workflows import journal as journal_module
from threadline.shared.workflows.journal import (
    MAX_EVENTS_KEPT,
    RELEASED_MS,
    WF_POOL_RELEASE,
    WF_POOL_TAKE,
    Journal,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
async def journal(redis_url: str) -> AsyncIterator[Journal]:
    client = connect(redis_url)
    try:
        yield Journal(client, Scripts(client), retention_s=60, lease_ms=200)
    finally:
        await client.aclose()


@pytest.mark.parametrize("run_id", ["w1", "wf01hq3k", "auth0|5f:a%3Ab", "é:{x}"])
async def test_the_scripts_name_the_same_channels_as_python(journal: Journal, run_id: str) -> None:
    source = lua(journal_module.__file__, "run").source + "return {RUN_CHANNEL}"
    workflow_keys = keys.workflow_keys(run_id)
    got = [k.decode() for k in await journal.redis.eval(source, len(workflow_keys), *workflow_keys)]
    assert got == [keys.workflow_channel(run_id)]


async def test_a_due_timer_goes_to_one_caller_and_comes_back_after_its_lease(journal: Journal) -> None:
    run_id, _ = await journal.start(child_sum, "alice", [1])
    assert await journal.fire(keys.workflow_drive_timer(run_id)) == ["drive", run_id]
    assert await journal.fire(keys.workflow_drive_timer(run_id)) == ["none"]  # taken: a lease ahead
    time.sleep(0.25)
    assert await journal.fire(keys.workflow_drive_timer(run_id)) == ["drive", run_id]  # that caller died: due again


async def test_one_walk_of_the_timers_per_poll_interval_whatever_the_number_of_workers(journal: Journal) -> None:
    other = Journal(journal.redis, Scripts(journal.redis), retention_s=60, lease_ms=200)
    assert await journal.take_tick(200)
    assert not await other.take_tick(200)  # another worker in the same interval: no second walk
    assert not await journal.take_tick(200)
    time.sleep(0.2)  # (the tick lasts 90% of the interval, so the next poll of either finds it free)
    assert await other.take_tick(200)


async def test_a_pass_that_read_older_history_commits_nothing(journal: Journal) -> None:
    run_id, _ = await journal.start(child_sum, "alice", [1])
    fields, _, _ = await journal.snapshot(run_id)
    step = {"op": "step", "id": "0", "kind": "job", "name": "add", "attempts": 1, "input": '{"op":"call"}'}
    assert await journal.commit(run_id, fields["version"], [step]) == ("ok", ["0"])
    assert await journal.commit(run_id, fields["version"], [{**step, "id": "1"}]) == ("stale", [])
    assert [s.id for s in (await journal.view(run_id)).steps] == ["0"]


async def test_an_attempt_given_up_as_lost_cannot_write_its_result(journal: Journal) -> None:
    run_id, _ = await journal.start(child_sum, "alice", [1])
    fields, _, _ = await journal.snapshot(run_id)
    step = {"op": "step", "id": "0", "kind": "job", "name": "add", "attempts": 3, "input": "{}"}
    await journal.commit(run_id, fields["version"], [step])
    assert await journal.take_step(run_id, "0", 1) == (b"{}", "alice", "child_sum", False)
    assert await journal.take_step(run_id, "0", 1) is None  # one taker per attempt
    time.sleep(0.25)  # no renewal: the worker is gone
    assert await journal.fire(keys.workflow_step_timer(run_id, "0")) == ["step", run_id, "0", "2"]
    assert not await journal.renew_step(run_id, "0", 1)
    assert not await journal.finish_step(run_id, "0", 1, result=b"1")  # the lost attempt's result is dropped
    assert await journal.take_step(run_id, "0", 2) is not None
    assert await journal.finish_step(run_id, "0", 2, result=b"2")
    view = await journal.view(run_id)
    assert (view.steps[0].status, view.steps[0].attempt, bytes(view.steps[0].result or b"")) == ("completed", 2, b"2")


async def test_the_last_attempt_lost_fails_the_step(journal: Journal) -> None:
    run_id, _ = await journal.start(child_sum, "alice", [1])
    fields, _, _ = await journal.snapshot(run_id)
    await journal.commit(run_id, fields["version"], [{"op": "step", "id": "0", "kind": "job", "name": "add",
                                                      "attempts": 1, "input": "{}"}])
    await journal.take_step(run_id, "0", 1)
    time.sleep(0.25)
    assert await journal.fire(keys.workflow_step_timer(run_id, "0")) == ["none"]
    step = (await journal.view(run_id)).steps[0]
    assert (step.status, step.error_kind) == ("failed", "lost")


async def test_runs_past_a_kinds_limit_wait_in_order_for_a_place(journal: Journal) -> None:
    first, _ = await journal.start(pooled, "alice", "a")
    second, _ = await journal.start(pooled, "bob", "b")
    third, _ = await journal.start(pooled, "carol", "c")
    assert [(await journal.view(r)).status for r in (first, second, third)] == ["running", "queued", "queued"]
    assert await journal.cancel(second)  # a queued run leaves the queue
    assert await journal.cancel(first)
    assert (await journal.view(third)).status == "running"
    assert await journal.fire(keys.workflow_drive_timer(third)) == ["drive", third]


async def test_events_wait_for_a_step_up_to_a_limit(journal: Journal) -> None:
    run_id, _ = await journal.start(waiter, "alice", {})
    for i in range(MAX_EVENTS_KEPT):
        assert await journal.send_event(run_id, "ping", i) == ""
    with pytest.raises(Conflict):
        await journal.send_event(run_id, "ping", "one too many")
    with pytest.raises(NotFound):
        await journal.send_event("w-none", "ping", 1)
    fields, _, _ = await journal.snapshot(run_id)
    await journal.commit(run_id, fields["version"], [{"op": "step", "id": "0", "kind": "event", "name": "ping",
                                                      "event": "ping"}])
    view = await journal.view(run_id)
    assert bytes(view.steps[0].result or b"") == b"0" and view.events_kept == MAX_EVENTS_KEPT - 1


async def test_an_ended_run_expires_after_the_retention_time_and_leaves_the_index(journal: Journal) -> None:
    run_id, _ = await journal.start(child_sum, "alice", [1], key="once")
    await journal.cancel(run_id)
    ttl = await journal.redis.ttl(keys.workflow(run_id, "run"))
    assert 0 < ttl <= 60
    with pytest.raises(Conflict):
        await journal.send_event(run_id, "late", 1)
    await journal.redis.delete(*(keys.workflow(run_id, p) for p in keys.WORKFLOW_PARTS))  # as if expired
    assert await journal.trim(int(time.time() * 1000) + 1) == 1
    assert await journal.redis.zscore(keys.WORKFLOW_RUNS, run_id) is None
    assert await journal.redis.zscore(keys.user_workflows("alice"), run_id) is None


async def test_a_late_pool_take_for_a_run_that_gave_its_place_back_takes_none(journal: Journal) -> None:
    pool = [keys.workflow_pool("pooled", part) for part in ("running", "queue", "released")] + [keys.outbox("pooled")]
    run = journal._scripts.run
    assert await run(WF_POOL_TAKE, pool, ["w1", 1, 1]) == [1, ANY]  # a place
    assert await run(WF_POOL_TAKE, pool, ["w1", 1, 2]) == [1, ANY]  # the same follow-up again: the same place
    assert await run(WF_POOL_TAKE, pool, ["w2", 1, 3]) == [2]  # queued
    assert await run(WF_POOL_RELEASE, pool, ["w3", 1, 4, RELEASED_MS]) == []  # w3 ended before its take came
    assert await run(WF_POOL_TAKE, pool, ["w3", 1, 5]) == [0]  # ... which takes nothing
    assert len(await run(WF_POOL_RELEASE, pool, ["w1", 1, 6, RELEASED_MS])) == 1  # w2 gets the place
    assert await journal.redis.smembers(pool[0]) == {b"w2"} and not await journal.redis.zcard(pool[1])
