"""Generation jobs as both sides see them: queue names, job ids, the job's function.

The web process enqueues and the workers run; both import only this module, so
the web process never loads the worker's code (runner, models, memory).
"""

from __future__ import annotations

from rq.job import Job
from rq.queue import Queue

GENERATION = "generation"
INDEX = "index"
QUEUES = (GENERATION, INDEX)

GENERATE = "threadline.workers.reply_job.run"  # the function a generation job runs, by import path
RESULT_TTL_S = 3600
FAILURE_TTL_S = 86400
WAITING = {b"queued", b"deferred", b"scheduled"}  # job statuses that still stand for work to come


def job_id(trigger_message_id: str) -> str:
    """Jobs are named after the message that asked for them: a resent mutation never enqueues twice."""
    return f"gen-{trigger_message_id}"


def job_key(jid: str) -> str:
    """RQ's own hash of a job (its status, data...)."""
    key = Job.key_for(jid)
    return key.decode() if isinstance(key, bytes) else key


def queue_key(name: str) -> str:
    """RQ's list of a queue's waiting job ids."""
    return f"{Queue.redis_queue_namespace_prefix}{name}"
