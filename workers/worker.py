"""The RQ worker class for generation jobs.

A generation mostly waits on the model, so one worker process runs up to
WORKER_CONCURRENCY of them at once on one event loop (workers.concurrent), with
the generation code imported up front and one Redis pool and one HTTP client
per provider shared by all of them. A process that dies takes its replies with
it; ``rq worker-pool`` starts a new one, the stream reaper ends (or retries)
the replies within STREAM_STALE_MS, and each thread's queue skips the dead jobs.

Each worker also fires due workflow timers (workers.workflows): the steps of
durable workflows run as jobs of this queue.

Each worker process also heartbeats every few seconds into one sorted set, so
readiness (``/readyz``) can tell whether any generation worker is alive now,
not only within RQ's minutes-long worker TTL.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import threadline.workers.reply_job  # noqa: F401 - preload the job's code in the worker
from threadline.shared import gc_tuning, keys, logs, metrics
from threadline.shared.clock import now_ms
from threadline.shared.runtime import process_settings
from threadline.shared.storage.client import connect_sync
from threadline.workers import webhooks, workflows
from threadline.workers.concurrent import ConcurrentWorker

log = logging.getLogger(__name__)

HEARTBEAT_S = 5.0
FORGET_AFTER_MS = 3_600_000  # entries of workers gone this long are removed


def heartbeat_once(connection: Any, name: str) -> None:
    now = now_ms()
    with connection.pipeline(transaction=False) as pipe:
        pipe.zadd(keys.GENERATION_WORKERS, {name: now})
        pipe.zremrangebyscore(keys.GENERATION_WORKERS, "-inf", now - FORGET_AFTER_MS)
        pipe.execute()


class GenerationWorker(ConcurrentWorker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = process_settings()
        # the heartbeat is the store's (the web process's /readyz reads it there), RQ's keys may be apart
        self._store = connect_sync(settings.redis_url) if settings.rq_apart else self.connection
        logs.setup("worker", settings.log_level, settings.log_json)
        gc_tuning.tune(settings.gc_thresholds)  # hundreds of replies' objects: fewer full collections
        metrics.serve(settings.metrics_port)

    def bootstrap(self, *args: Any, **kwargs: Any) -> None:
        super().bootstrap(*args, **kwargs)
        self._beating = threading.Event()
        threading.Thread(target=self._beat, name="heartbeat", daemon=True).start()
        poll_s = process_settings().workflow_poll_ms / 1000
        loop = self.loop
        loop.call_soon_threadsafe(lambda: loop.create_task(workflows.fire_timers(poll_s), name="workflow-timers"))
        loop.call_soon_threadsafe(lambda: loop.create_task(webhooks.fire_due(), name="webhook-deliveries"))

    def _beat(self) -> None:
        while not self._beating.is_set():
            try:
                heartbeat_once(self._store, self.name)
            except Exception as exc:  # Redis away: the next beat tries again
                log.warning("worker heartbeat failed: %s", exc)
            self._beating.wait(HEARTBEAT_S)

    def teardown(self) -> None:
        self._beating.set()
        try:
            self._store.zrem(keys.GENERATION_WORKERS, self.name)
        except Exception as exc:
            log.warning("could not unregister worker heartbeat: %s", exc)
        super().teardown()
