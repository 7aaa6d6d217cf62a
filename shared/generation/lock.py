"""One generation at a time per thread, first asked first (the ``enqueue`` strategy).

The web process appends each job id to the thread's queue in the same
transaction as it hands the job to RQ (server.reply_queue). A job runs when it
holds the thread's lock and is at the head of the queue.
While a job waits or runs it keeps an "alive" key fresh; a head that is not
alive and no longer queued in RQ (ended, or its worker died) is dropped, so a
dead job never blocks the thread. The lock's lease is renewed while held, so a
worker that dies frees it within LEASE_MS. A job that takes its turn marks it as
begun (``began``): run again (its worker was thought dead, server.stranded), it
answers nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from threadline.shared import jobs, keys
from threadline.shared.generation.pulse import pulse_for
from threadline.shared.storage.client import Client, text
from threadline.shared.storage.scripts import Scripts, lua
from threadline.shared.tasks import cancel_and_wait

LEASE_MS = 10_000
POLL_S = 0.05
ALIVE_MS = 3_000
START_GRACE_MS = LEASE_MS  # how long a started job may take to mark itself alive
BEGAN_TTL_S = jobs.FAILURE_TTL_S  # as long as RQ keeps the job's record
TURN_TAKE = lua(__file__, "turn_take")
TURN_END = lua(__file__, "turn_end")
LOCK_EXTEND = lua(__file__, "lock_extend")


@contextlib.asynccontextmanager
async def thread_turn(redis: Client, thread_id: str, job_id: str | None,
                      wait_s: float = 3600.0, rq: Client | None = None) -> AsyncIterator[bool]:
    """Wait for this job's turn in the thread, then hold the thread until the block ends (``rq``: the
    Redis of RQ's job records, when not ``redis``). Yields whether the turn is the job's first: False
    when the same job already began (it was run again), and it must not answer twice."""
    key, token = keys.generation_lock(thread_id), secrets.token_hex(8)
    queue = keys.generation_queue(thread_id)
    scripts = Scripts(redis)
    take_keys = [key, queue, keys.generation_began(thread_id, job_id or "")]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    alive = asyncio.create_task(_keep_alive(redis, job_id)) if job_id is not None else None
    holding = False
    try:
        while True:
            taken = await scripts.run(TURN_TAKE, take_keys, [token, LEASE_MS, job_id or "", BEGAN_TTL_S])
            if int(taken[0]) == 1:
                first = bool(int(taken[1]))
                break
            if int(taken[0]) == 2 and job_id is not None:  # the lock is ours, another job heads the queue
                if await redis.lpos(queue, job_id) is None:
                    # taken for dead while starting up (before our alive key): back in front
                    await redis.lpush(queue, job_id)
                elif await _void(redis, rq or redis, text(taken[1])):
                    await redis.lrem(queue, 1, text(taken[1]))
                await _end_turn(scripts, thread_id, None, token)  # the lock back, the job still queued
            if loop.time() > deadline:
                raise TimeoutError(f"thread {thread_id} stayed busy for {wait_s}s")
            await asyncio.sleep(POLL_S)
        holding = True
        renewer = asyncio.create_task(_renew(scripts, key, token))
        try:
            yield first
        finally:
            await cancel_and_wait(renewer)
    finally:
        if alive is not None:
            await cancel_and_wait(alive)
        with contextlib.suppress(Exception):
            if job_id is not None or holding:
                await _end_turn(scripts, thread_id, job_id, token if holding else "")


async def _end_turn(scripts: Scripts, thread_id: str, job_id: str | None, token: str) -> None:
    """The job leaves the thread's queue (with ``job_id``; None: it stays) and gives back the lock it
    holds (``token``; "" when it holds none), in one step of the thread's slot; its alive key goes after."""
    await scripts.run(TURN_END, [keys.generation_lock(thread_id), keys.generation_queue(thread_id),
                                 keys.generation_aborts(thread_id)], [token, job_id or ""])
    if job_id is not None:
        await scripts.redis.delete(keys.generation_alive(job_id))


async def _keep_alive(redis: Client, job_id: str | None) -> None:
    """Mark the job alive now, then with every other job of the process (see shared.generation.pulse)."""
    key = keys.generation_alive(job_id or "")
    await redis.set(key, b"1", px=ALIVE_MS)
    pulse = pulse_for(redis)
    pulse.keep(key, ALIVE_MS)
    try:
        await asyncio.Event().wait()  # until cancelled
    finally:
        pulse.drop(key)


async def _renew(scripts: Scripts, key: str, token: str) -> None:
    while True:
        await asyncio.sleep(LEASE_MS / 3000)
        await scripts.run(LOCK_EXTEND, [key], [token, LEASE_MS])


async def _void(redis: Client, rq: Client, job_id: str) -> bool:
    """Whether a queued job id no longer stands for work to come (ended, gone, or dead).

    A job RQ started a moment ago may not have marked itself alive yet (a worker running many
    jobs on one loop schedules it later): for START_GRACE_MS it keeps its place, or the job
    behind it in the thread would take its turn and answer out of order.
    """
    if await redis.exists(keys.generation_alive(job_id)):
        return False
    status, started_at = await rq.hmget(jobs.job_key(job_id), ["status", "started_at"])
    if status is not None and status in jobs.WAITING:
        return False
    return status != b"started" or not within_start_grace(started_at)


def within_start_grace(started_at: bytes | str | None) -> bool:
    """Whether RQ's ``started_at`` (UTC, its own format) is within START_GRACE_MS of now."""
    try:
        started = datetime.strptime(text(started_at or b""), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return False
    return (datetime.now(UTC) - started).total_seconds() * 1000 < START_GRACE_MS
