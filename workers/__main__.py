"""``python -m threadline.workers generation|index|cron|vacuum|reembed``: the RQ worker processes of one
queue, the cron scheduler of maintenance jobs, or a one-off job."""

from __future__ import annotations

import asyncio
import os
import sys

from threadline.shared.errors import ConfigError
from threadline.shared.runtime import process_settings
from threadline.shared.storage import layout
from threadline.shared.storage.cluster import check_rq
from threadline.workers.queues import GENERATION, INDEX, wait_for_redis


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in (GENERATION, INDEX, "cron", "vacuum", "reembed"):
        print(f"usage: python -m threadline.workers {GENERATION}|{INDEX}|cron|vacuum|reembed", file=sys.stderr)
        return 2
    try:
        settings = process_settings()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    queue = argv[0]
    wait_for_redis(settings.redis_url).close()
    try:
        check_rq(settings.redis_url, settings.rq_url)
        layout.check_url(settings.redis_url)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if settings.rq_apart:
        wait_for_redis(settings.rq_url).close()
    if queue == "reembed":
        from threadline.workers.reembed import run as reembed

        reembed()
        return 0
    if queue in ("cron", "vacuum"):
        from threadline.workers import maintenance

        if queue == "cron":
            maintenance.run_cron()
        else:
            print(f"vacuum: {asyncio.run(maintenance.vacuum_files())} unreferenced file(s) dropped")
        return 0
    if queue == INDEX:
        from threadline.workers.index import run

        run()
        return 0
    count = settings.workers if queue == GENERATION else 1
    # RQ's command line on this very interpreter (an `rq` on PATH may belong to another one)
    argv = [sys.executable, "-m", "rq.cli", "worker-pool", "-n", str(count), "-u", settings.rq_url]
    if queue == GENERATION:
        argv += ["-w", "threadline.workers.worker.GenerationWorker"]
    os.execv(sys.executable, [*argv, queue])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
