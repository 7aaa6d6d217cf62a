"""Webhook deliveries, as RQ jobs on the generation queue (shared.webhooks has how they are recorded).

Each generation worker looks for due deliveries every POLL_S (``fire_due``); taking one moves it a
lease ahead, so each attempt goes to one worker and comes back if that worker dies. ``deliver``
makes one attempt: a POST of the event, signed for its moment (Standard Webhooks headers), within
WEBHOOK_TIMEOUT_S; a 2xx answer delivers it, anything else (a timeout, a refused connection) is
tried again after the next delay of WEBHOOK_BACKOFF_S, and after the last one the delivery fails.
Every attempt is logged on its endpoint (GET /api/admin/webhooks/{id}/deliveries).
"""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
import redis
from rq.queue import Queue

from threadline.shared import runtime
from threadline.shared.clock import now_ms
from threadline.shared.config import Settings
from threadline.shared.errors import NotFound
from threadline.shared.jobs import FAILURE_TTL_S, GENERATION
from threadline.shared.webhooks import Attempt, Webhooks
from threadline.shared.webhooks.records import Outcome
from threadline.shared.webhooks.signing import headers

log = logging.getLogger(__name__)

DELIVER = "threadline.workers.webhooks.deliver"
POLL_S = 0.5
LEASE_MS = 300_000  # an attempt taken and not recorded this long ago lost its worker: taken again
ERROR_CHARS = 300  # of an answer's body or an exception, kept in the log

_clients: dict[int, httpx.AsyncClient] = {}


def backoff_s(settings: Settings) -> list[float]:
    return [float(x) for x in settings.webhook_backoff_s.split(",")]


async def fire_due(poll_s: float = POLL_S) -> None:
    """Hand the due deliveries to RQ, forever (a generation worker's background task)."""
    rt = runtime.for_this_loop()
    queue = Queue(GENERATION, connection=redis.Redis.from_url(rt.settings.rq_url))
    timeout = int(rt.settings.webhook_timeout_s) + 30
    while True:
        try:
            for delivery_id, _, take in await rt.store.webhooks.take_due(LEASE_MS):
                await asyncio.to_thread(queue.enqueue_call, DELIVER, args=(delivery_id, take),
                                        job_id=f"whd-{delivery_id}-{take}", timeout=timeout,
                                        result_ttl=0, failure_ttl=FAILURE_TTL_S)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # Redis away: the next round tries again (what was taken comes back)
            log.warning("webhook deliveries: %s", exc)
        await asyncio.sleep(poll_s)


async def deliver(delivery_id: str, take: int) -> str:
    """RQ job: one attempt of one delivery; returns its outcome."""
    rt = runtime.for_this_loop()
    hooks: Webhooks = rt.store.webhooks
    delivery = await hooks.delivery(delivery_id)
    if delivery is None or delivery.status != "pending" or delivery.takes != take:
        return "stale"
    try:
        endpoint = await hooks.get(delivery.endpoint_id)
    except NotFound:
        await hooks.record(delivery, None)
        return "dropped"
    started = time.monotonic()
    at = now_ms()
    code: int | None = None
    error: str | None = None
    try:
        answer = await _client().post(endpoint.url, content=delivery.body, timeout=rt.settings.webhook_timeout_s,
                                      headers=headers(endpoint.secret, delivery_id, at // 1000, delivery.body))
        code = answer.status_code
        if not answer.is_success:
            error = f"answered {code}: {answer.text[:ERROR_CHARS]}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {str(exc)[:ERROR_CHARS]}"
    delays = backoff_s(rt.settings)
    outcome: Outcome = "delivered" if error is None else "retry" if delivery.attempt <= len(delays) else "failed"
    attempt = Attempt(delivery_id=delivery_id, event_id=delivery.event_id, type=delivery.type,
                      attempt=delivery.attempt, outcome=outcome, at=at,
                      duration_ms=int((time.monotonic() - started) * 1000), status_code=code, error=error,
                      next_at=now_ms() + int(delays[delivery.attempt - 1] * 1000) if outcome == "retry" else None)
    if not await hooks.record(delivery, attempt):
        return "stale"
    if error is not None:
        log.warning("webhook %s to %s, attempt %d: %s", delivery_id, endpoint.url, delivery.attempt, error)
    return outcome


def _client() -> httpx.AsyncClient:
    """This loop's client (its connections belong to the loop); redirects are not followed."""
    loop = id(asyncio.get_running_loop())
    found = _clients.get(loop)
    if found is None:
        found = _clients[loop] = httpx.AsyncClient(follow_redirects=False)
    return found
