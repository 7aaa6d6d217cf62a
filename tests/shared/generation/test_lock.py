"""A thread's turn: first asked, first answered, even while the first job is still starting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rq.utils import utcformat

from threadline.shared import jobs, keys
from threadline.shared.generation.lock import START_GRACE_MS, thread_turn
from threadline.shared.threads import Store

pytestmark = pytest.mark.anyio


async def _queued(store: Store, thread_id: str, first_started: datetime) -> None:
    """Two jobs in the thread's queue; RQ has started the first, which has not marked itself alive."""
    await store.redis.hset(jobs.job_key("job-1"), mapping={"status": "started", "started_at": utcformat(first_started)})
    await store.redis.rpush(keys.generation_queue(thread_id), "job-1", "job-2")


async def test_a_job_just_started_keeps_its_turn(store: Store) -> None:
    """The second job must not take the turn of a first one RQ started a moment ago (a worker running
    many jobs on one loop may schedule it later): it waits, and the thread keeps its order."""
    await _queued(store, "t1", datetime.now(UTC))
    with pytest.raises(TimeoutError):
        async with thread_turn(store.redis, "t1", "job-2", wait_s=0.5):
            pytest.fail("the second job answered before the first")
    assert [j.decode() for j in await store.redis.lrange(keys.generation_queue("t1"), 0, -1)] == ["job-1"]


async def test_a_job_started_long_ago_and_never_alive_gives_its_turn_up(store: Store) -> None:
    """Its worker died before it marked itself alive: after the grace, the thread goes on."""
    await _queued(store, "t2", datetime.now(UTC) - timedelta(milliseconds=START_GRACE_MS + 1000))
    async with thread_turn(store.redis, "t2", "job-2", wait_s=5):
        pass


async def test_a_job_run_again_after_it_began_is_told_so(store: Store) -> None:
    """Its worker was taken for dead and the job queued again: the second run takes the turn but
    learns the job already began, so it answers nothing twice."""
    await store.redis.rpush(keys.generation_queue("t3"), "job-1")
    async with thread_turn(store.redis, "t3", "job-1", wait_s=5) as first:
        assert first is True
    await store.redis.rpush(keys.generation_queue("t3"), "job-1")
    async with thread_turn(store.redis, "t3", "job-1", wait_s=5) as first:
        assert first is False
    async with thread_turn(store.redis, "t3", None, wait_s=5) as first:  # a turn with no job: always first
        assert first is True
