"""Maintenance jobs (the file vacuum, the usage ledger's and the workflow runs' retention), run on a schedule by RQ's cron
scheduler (``python -m threadline.workers cron``).

The scheduler enqueues them on the generation queue: the generation workers run them
between replies (they are short, and async like the replies).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from rq.cron import CronScheduler

from threadline.shared.config import Settings, load_settings
from threadline.shared.files.store import FileStore
from threadline.shared.jobs import GENERATION
from threadline.shared.redis_client import connect
from threadline.shared.store._scripts import Scripts
from threadline.shared.usage.ledger import UsageLedger
from threadline.shared.workflows.journal import Journal
from threadline.workers.queues import wait_for_redis

log = logging.getLogger(__name__)


async def vacuum_files() -> int:
    """Drop the files no message has referenced for FILES_GRACE_S; returns how many."""
    async def vacuum(redis: aioredis.Redis, settings: Settings) -> int:
        return await FileStore.from_settings(redis, Scripts(redis), settings).vacuum(settings.files_grace_s)

    return await _with_redis(vacuum, "vacuum: %d unreferenced file(s) dropped")


async def trim_usage() -> int:
    """Drop usage ledger entries older than USAGE_RETENTION_DAYS (the period totals stay)."""
    async def trim(redis: aioredis.Redis, settings: Settings) -> int:
        return await UsageLedger.from_settings(redis, Scripts(redis), settings).trim(settings.usage_retention_days)

    return await _with_redis(trim, "usage: %d ledger entries past retention dropped")


async def trim_workflows() -> int:
    """Forget the index entries of workflow runs whose records expired (WORKFLOW_RETENTION_S)."""
    async def trim(redis: aioredis.Redis, settings: Settings) -> int:
        journal = Journal.from_settings(redis, Scripts(redis), settings)
        return await journal.trim(int(time.time() * 1000) - settings.workflow_retention_s * 1000)

    return await _with_redis(trim, "workflows: %d expired runs forgotten")


async def _with_redis(job: Callable[[aioredis.Redis, Settings], Awaitable[int]], done: str) -> int:
    """Run a maintenance job on its own connection; log how many things it did (``done`` % count)."""
    settings = load_settings()
    redis = connect(settings.redis_url)
    try:
        count = await job(redis, settings)
    finally:
        await redis.aclose()
    log.info(done, count)
    return count


def vacuum_interval_s(grace_s: int) -> int:
    return max(60, grace_s // 4)


def run_cron() -> None:
    """RQ's cron scheduler with this app's maintenance jobs (one such process is enough; more
    only enqueue the same jobs more often)."""
    settings = load_settings()
    connection = wait_for_redis(settings.redis_url)
    cron = CronScheduler(connection=connection, logging_level=settings.log_level.upper()
                         if settings.log_level != "trace" else "DEBUG")
    cron.register(vacuum_files, queue_name=GENERATION, interval=vacuum_interval_s(settings.files_grace_s),
                  job_timeout=600, name="vacuum_files")
    cron.register(trim_usage, queue_name=GENERATION, cron="17 3 * * *", job_timeout=3600, name="trim_usage")
    cron.register(trim_workflows, queue_name=GENERATION, cron="37 * * * *", job_timeout=600, name="trim_workflows")
    cron.start()  # type: ignore[no-untyped-call, unused-ignore]  # (RQ leaves it unannotated; checked strict from threadline.cli)
