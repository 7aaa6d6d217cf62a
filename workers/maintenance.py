"""Maintenance jobs (the file vacuum, the usage ledger's and the workflow runs' retention, erasures of
users' data left unfinished), run on a schedule by RQ's cron scheduler (``python -m threadline.workers cron``).

The scheduler enqueues them on the generation queue: the generation workers run them
between replies (they are short, and async like the replies).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

from rq.cron import CronScheduler

from threadline.shared import runtime
from threadline.shared.clock import now_ms
from threadline.shared.jobs import GENERATION
from threadline.shared.userdata.erasure import Erasures
from threadline.workers.queues import wait_for_redis

log = logging.getLogger(__name__)


async def vacuum_files() -> int:
    """Drop the files no message has referenced for FILES_GRACE_S; returns how many."""
    rt = runtime.for_this_loop()
    return _done(await rt.files.vacuum(rt.settings.files_grace_s), "vacuum: %d unreferenced file(s) dropped")


async def trim_usage() -> int:
    """Drop usage ledger entries older than USAGE_RETENTION_DAYS (the period totals stay)."""
    rt = runtime.for_this_loop()
    return _done(await rt.usage.trim(rt.settings.usage_retention_days),
                 "usage: %d ledger entries past retention dropped")


async def trim_workflows() -> int:
    """Forget the index entries of workflow runs whose records expired (WORKFLOW_RETENTION_S)."""
    rt = runtime.for_this_loop()
    cutoff = now_ms() - rt.settings.workflow_retention_s * 1000
    return _done(await rt.workflows.trim(cutoff), "workflows: %d expired runs forgotten")


async def erase_user(user_id: str) -> str:
    """Do (or go on with) the erasure of a user's data asked for by ``Erasures.ask``."""
    view = await Erasures(runtime.for_this_loop()).run(user_id)
    return view.status if view is not None else "held by another runner"


async def resume_erasures() -> int:
    """Go on with the erasures whose runner died (its lease ran out) or that no job took."""
    erasures = Erasures(runtime.for_this_loop())
    done = 0
    for user_id in await erasures.due():
        done += await erasures.run(user_id) is not None
    return _done(done, "erasures: %d resumed and finished")


def _done(count: int, message: str) -> int:
    """Log how many things a maintenance job did (``message`` % count)."""
    log.info(message, count)
    return count


def vacuum_interval_s(grace_s: int) -> int:
    return max(60, grace_s // 4)


def _schedules() -> None:
    """The app's and its users' schedules (workers.schedules), on a loop of their own beside RQ's cron."""
    from threadline.workers import schedules

    while True:  # (a scheduler that stops stops every schedule: it starts again)
        try:
            asyncio.run(schedules.run())
        except Exception:
            log.exception("the scheduler stopped; starting it again in 5 s")
            time.sleep(5)


def run_cron() -> None:
    """RQ's cron scheduler with this app's maintenance jobs (one such process is enough; more
    only enqueue the same jobs more often), and the scheduler of schedules (any number may run)."""
    settings = runtime.process_settings()
    connection = wait_for_redis(settings.rq_url)
    cron = CronScheduler(connection=connection, logging_level=settings.log_level.upper()
                         if settings.log_level != "trace" else "DEBUG")
    cron.register(vacuum_files, queue_name=GENERATION, interval=vacuum_interval_s(settings.files_grace_s),
                  job_timeout=600, name="vacuum_files")
    cron.register(trim_usage, queue_name=GENERATION, cron="17 3 * * *", job_timeout=3600, name="trim_usage")
    cron.register(trim_workflows, queue_name=GENERATION, cron="37 * * * *", job_timeout=600, name="trim_workflows")
    cron.register(resume_erasures, queue_name=GENERATION, interval=60, job_timeout=3600, name="resume_erasures")
    threading.Thread(target=_schedules, name="schedules", daemon=True).start()
    cron.start()  # type: ignore[no-untyped-call, unused-ignore]  # (RQ leaves it unannotated; checked strict from threadline.cli)
