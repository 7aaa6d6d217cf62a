"""Webhook endpoints and deliveries in Redis (all in the ``{webhooks}`` slot).

An event becomes one delivery per endpoint that takes it (``emit``, done by an outbox follow-up
recorded in the same atomic step as the change the event tells of, so it happens once in effect:
a delivery's id is derived from the event's and the endpoint's, and a delivery recorded already is
left as it is). Workers take the deliveries that are due (``take_due``: each by one taker, due again
a lease later in case its worker dies), attempt them as RQ jobs (workers.webhooks) and record each
attempt (``record``): delivered, due again after the next backoff, or failed after the last one.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import msgspec

from threadline.shared import keys
from threadline.shared.clock import now_ms
from threadline.shared.errors import BadRequest, Conflict, NotFound
from threadline.shared.storage.client import Client, as_bytes, redis_errors, text, texts
from threadline.shared.storage.due import DueSet
from threadline.shared.storage.scripts import Scripts, lua
from threadline.shared.webhooks.records import (
    EVENTS,
    MAX_ENDPOINTS,
    MAX_URL,
    Attempt,
    Delivery,
    Endpoint,
)
from threadline.shared.webhooks.signing import new_secret

WEBHOOK_ERASE = lua(__file__, "webhook_erase")
WEBHOOK_EMIT = lua(__file__, "webhook_emit")
WEBHOOK_DONE = lua(__file__, "webhook_done")

RETENTION_S = 7 * 86400  # a delivery's record (and so its id's protection from a second emit) lives this long
LOG_CAP = 200  # attempts kept per endpoint
WANTS_TTL_S = 1.0  # how long a process trusts its copy of which events have endpoints

DUE = DueSet(keys.WEBHOOK_DUE, keys.WEBHOOK_DELIVERY_PREFIX, ("status", "pending"), "attempt")
_endpoint = msgspec.json.Decoder(Endpoint)
_encode = msgspec.json.Encoder().encode


def delivery_id(event_id: str, webhook_id: str) -> str:
    """The id of one event's delivery to one endpoint (its ``webhook-id``, the same on every retry)."""
    return "msg_" + hashlib.sha256(f"{event_id}/{webhook_id}".encode()).hexdigest()[:32]


def check_endpoint(url: str, events: Sequence[str]) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > MAX_URL:
        raise BadRequest(f"`url` must be an http or https URL with a host, at most {MAX_URL} characters")
    unknown = [e for e in events if e not in EVENTS]
    if not events or unknown:
        raise BadRequest(f"`events` must name at least one of {', '.join(EVENTS)}"
                         + (f" (unknown: {', '.join(unknown)})" if unknown else ""))


class Webhooks:
    def __init__(self, redis: Client, scripts: Scripts) -> None:
        self._redis = redis
        self._scripts = scripts
        self._wanted: tuple[float, frozenset[str]] = (0.0, frozenset())

    async def add(self, url: str, events: Sequence[str], description: str = "") -> Endpoint:
        """Register an endpoint; the one answer that shows its secret."""
        check_endpoint(url, events)
        endpoint = Endpoint(webhook_id="wh_" + secrets.token_hex(8), url=url,
                            events=sorted(set(events)), secret=new_secret(), description=description[:500],
                            created_at=now_ms())
        with redis_errors():
            if await self._redis.hlen(keys.WEBHOOK_ENDPOINTS) >= MAX_ENDPOINTS:
                raise Conflict(f"at most {MAX_ENDPOINTS} webhook endpoints")
            await self._redis.hset(keys.WEBHOOK_ENDPOINTS, endpoint.webhook_id, _encode(endpoint))
        self._wanted = (0.0, frozenset())
        return endpoint

    async def endpoints(self) -> list[Endpoint]:
        with redis_errors():
            raw = await self._redis.hvals(keys.WEBHOOK_ENDPOINTS)
        return sorted((_endpoint.decode(r) for r in raw), key=lambda e: e.created_at)

    async def get(self, webhook_id: str) -> Endpoint:
        with redis_errors():
            raw = await self._redis.hget(keys.WEBHOOK_ENDPOINTS, webhook_id)
        if raw is None:
            raise NotFound(f"webhook {webhook_id} not found")
        return _endpoint.decode(raw)

    async def delete(self, webhook_id: str) -> None:
        """Remove an endpoint and its log; its deliveries still due are dropped when next taken."""
        with redis_errors():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hdel(keys.WEBHOOK_ENDPOINTS, webhook_id)
                pipe.delete(keys.webhook_log(webhook_id))
                removed, _ = await pipe.execute()
        if not removed:
            raise NotFound(f"webhook {webhook_id} not found")
        self._wanted = (0.0, frozenset())

    async def attempts(self, webhook_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """The endpoint's latest delivery attempts, newest first."""
        await self.get(webhook_id)
        with redis_errors():
            raw = await self._redis.lrange(keys.webhook_log(webhook_id), 0, limit - 1)
        return [msgspec.json.decode(r) for r in raw]

    async def wants(self, event_type: str) -> bool:
        """Whether an endpoint takes ``event_type`` (this process's copy, at most WANTS_TTL_S old, so
        a write path without endpoints records no event)."""
        at, wanted = self._wanted
        if time.monotonic() - at > WANTS_TTL_S:
            wanted = frozenset(e for endpoint in await self.endpoints() for e in endpoint.events)
            self._wanted = (time.monotonic(), wanted)
        return event_type in wanted

    async def emit(self, event_type: str, event_id: str, data: dict[str, Any], at_ms: int) -> int:
        """Record the event's delivery to every endpoint that takes it (each once, however often this is
        asked); returns how many were new."""
        body = _encode({"type": event_type, "timestamp": _iso(at_ms), "eventId": event_id, "data": data})
        targets = [e for e in await self.endpoints() if event_type in e.events]
        if not targets:
            return 0
        ids = [delivery_id(event_id, e.webhook_id) for e in targets]
        args: list[Any] = [now_ms(), RETENTION_S, len(ids)]
        for did, e in zip(ids, targets, strict=True):
            args += [did, e.webhook_id, event_id, event_type, body]
        users = {str(u) for u in (data.get("userId"), data.get("threadOwner")) if u}  # whom it is about
        with redis_errors():
            return int(await self._scripts.run(
                WEBHOOK_EMIT, [keys.WEBHOOK_DUE, *map(keys.webhook_delivery, ids),
                               *map(keys.webhook_user_deliveries, sorted(users))], args))

    async def erase_user(self, user_id: str) -> int:
        """Erase the deliveries of events about ``user_id`` not sent yet (their bodies hold the user's
        data: a reply's text); returns how many were pending."""
        erased = 0
        with redis_errors():
            ids = sorted(texts(await self._redis.smembers(keys.webhook_user_deliveries(user_id))))
            for i in range(0, len(ids), 100):
                chunk = ids[i:i + 100]
                erased += int(await self._scripts.run(WEBHOOK_ERASE, [keys.WEBHOOK_DUE,
                                                                      *map(keys.webhook_delivery, chunk)], chunk))
            await self._redis.delete(keys.webhook_user_deliveries(user_id))
        return erased

    async def take_due(self, lease_ms: int, limit: int = 100) -> list[tuple[str, int, int]]:
        """(deliveryId, attempt, take) of the deliveries due now, each taken by this caller only."""
        return await DUE.take(self._scripts, lease_ms, limit)

    async def delivery(self, delivery_id: str) -> Delivery | None:
        with redis_errors():
            raw = await self._redis.hgetall(keys.webhook_delivery(delivery_id))
        if not raw:
            return None
        return Delivery(delivery_id=delivery_id, endpoint_id=text(raw[b"endpointId"]), event_id=text(raw[b"eventId"]),
                        type=text(raw[b"type"]), body=as_bytes(raw.get(b"body", b"")), attempt=int(raw[b"attempt"]),
                        takes=int(raw[b"takes"]), status=text(raw[b"status"]))

    async def record(self, delivery: Delivery, attempt: Attempt | None) -> bool:
        """Record the outcome of ``delivery``'s current attempt (None: its endpoint is gone, nothing was
        sent); False when it was stale (another worker took the delivery since) or recorded already."""
        outcome = "dropped" if attempt is None else attempt.outcome
        entry = b"" if attempt is None else msgspec.json.encode(attempt)
        next_at = attempt.next_at if attempt is not None and attempt.next_at is not None else 0
        with redis_errors():
            return bool(await self._scripts.run(
                WEBHOOK_DONE,
                [keys.webhook_delivery(delivery.delivery_id), keys.WEBHOOK_DUE, keys.webhook_log(delivery.endpoint_id)],
                [delivery.delivery_id, delivery.takes, outcome, next_at, now_ms(), entry, LOG_CAP, delivery.attempt]))


def _iso(at_ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at_ms / 1000)) + f".{at_ms % 1000:03d}Z"
