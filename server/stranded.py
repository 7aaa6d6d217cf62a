"""Reply jobs stranded in a dead worker, handed back to RQ.

A worker takes several of a thread's jobs at once: one answers, the others wait
for the thread's turn inside it (shared.generation.lock). When that worker dies,
the reaper ends the reply that was streaming, but the jobs that only waited have
no stream: RQ still lists them as started by the dead worker, and no one would
ever answer their prompts. A job is stranded when RQ says it started more than
START_GRACE_MS ago, it is no longer alive, it still holds its place in its
thread's queue, and it never began answering. Such a job goes back on RQ's queue
under its own id, keeping its place in the thread, so the prompts are answered in
order. Running it twice is harmless: a job that already began answers nothing
again (the ``began`` mark of shared.generation.lock).
"""

from __future__ import annotations

import logging

import redis
from rq.job import Job
from rq.queue import Queue
from rq.registry import StartedJobRegistry

from threadline.shared import jobs, keys
from threadline.shared.generation.lock import within_start_grace
from threadline.shared.storage.client import SyncClient, text

log = logging.getLogger(__name__)


def requeue_stranded(rq: redis.Redis, store: SyncClient, queue: Queue) -> list[str]:
    """Put every stranded reply job of ``queue`` back on it; return their ids (``rq``: RQ's Redis,
    ``store``: the Redis of the threads' queues, the same one or not)."""
    registry = StartedJobRegistry(queue.name, connection=rq)
    started = [jid for jid in registry.get_job_ids(cleanup=False) if jid.startswith(jobs.job_id(""))]
    if not started:
        return []
    with store.pipeline(transaction=False) as pipe:
        for jid in started:
            pipe.execute_command("EXISTS", keys.generation_alive(jid))  # (a cluster pipeline queues no exists())
        alive = pipe.execute()
    quiet = [jid for jid, is_alive in zip(started, alive, strict=True) if not is_alive]
    if not quiet:
        return []
    with rq.pipeline(transaction=False) as pipe:
        for jid in quiet:
            pipe.hmget(jobs.job_key(jid), ["status", "started_at"])
        states = pipe.execute()
    old = [jid for jid, (status, at) in zip(quiet, states, strict=True)
           if status == b"started" and not within_start_grace(at)]
    requeued = []
    for job in Job.fetch_many(old, connection=rq):
        if job is not None and _stranded(store, job) and _requeue(rq, queue, registry, job):
            requeued.append(job.id)
    return requeued


def _stranded(store: SyncClient, job: Job) -> bool:
    """Whether the job still waits in its thread's queue without having begun."""
    if job.func_name != jobs.GENERATE or not job.args:
        return False
    thread_id = str(job.args[0])
    if store.lpos(keys.generation_queue(thread_id), job.id) is None:
        return False  # it ended (or was dropped as dead by the thread's next job)
    return not store.exists(keys.generation_began(thread_id, job.id))  # began: the reaper's to end


def _requeue(rq: redis.Redis, queue: Queue, registry: StartedJobRegistry, job: Job) -> bool:
    """Back on RQ's queue, once: only while RQ still says it started (a concurrent sweep or a late
    worker that moved it on wins)."""
    key = jobs.job_key(job.id)
    with rq.pipeline() as pipe:
        try:
            pipe.watch(key)  # type: ignore[no-untyped-call]  # (redis-py leaves it unannotated)
            if text(pipe.hget(key, "status") or b"") != "started":
                return False
            pipe.multi()
            registry.remove_executions(job, pipeline=pipe)
            queue.enqueue_job(job, pipeline=pipe)
            pipe.execute()
        except redis.WatchError:
            return False
    log.warning("job %s waited for its thread's turn in a worker that died: queued again", job.id)
    return True
