"""Webhook records against a real store: a delivery is recorded once however often its event is
emitted, taken by one taker, and only the latest take's outcome counts; its signature is what the
Standard Webhooks library verifies, and nothing else is."""

from __future__ import annotations

import time

import msgspec
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from threadline.shared import keys
from threadline.shared.errors import BadRequest
from threadline.shared.threads import Store
from threadline.shared.webhooks import Attempt, Webhooks, delivery_id
from threadline.shared.webhooks.signing import headers, new_secret

pytestmark = pytest.mark.anyio


def test_a_signature_verifies_with_the_standard_library_and_fails_for_another_secret_or_body() -> None:
    secret = new_secret()
    body = b'{"type":"reply.finished","data":{}}'
    sent = headers(secret, "msg_1", int(time.time()), body)
    assert Webhook(secret).verify(body, sent) == {"type": "reply.finished", "data": {}}
    for wrong_body, wrong_secret in ((body + b" ", secret), (body, new_secret())):
        with pytest.raises(WebhookVerificationError):
            Webhook(wrong_secret).verify(wrong_body, sent)
    with pytest.raises(WebhookVerificationError):  # an old signature is refused (a replay)
        Webhook(secret).verify(body, headers(secret, "msg_1", int(time.time()) - 3600, body))


async def test_an_event_emitted_twice_is_delivered_once_and_taken_by_one_taker(store: Store) -> None:
    hooks: Webhooks = store.webhooks
    a = await hooks.add("http://127.0.0.1:9/a", ["reply.finished"])
    b = await hooks.add("https://example.test/b", ["reply.failed", "reply.finished"])
    await hooks.add("https://example.test/c", ["workflow.finished"])
    assert await hooks.wants("reply.failed") and not await hooks.wants("usage.limit_reached")
    assert await hooks.emit("reply.finished", "evt_1", {"x": 1}, 1000) == 2
    assert await hooks.emit("reply.finished", "evt_1", {"x": 1}, 1000) == 0  # the follow-up again
    taken = await hooks.take_due(60_000)
    assert sorted(taken) == sorted([(delivery_id("evt_1", a.webhook_id), 1, 1),
                                    (delivery_id("evt_1", b.webhook_id), 1, 1)])
    assert await hooks.take_due(60_000) == []  # leased to the first taker
    did = taken[0][0]
    delivery = await hooks.delivery(did)
    assert delivery is not None and msgspec.json.decode(delivery.body)["data"] == {"x": 1}
    attempt = Attempt(delivery_id=did, event_id="evt_1", type="reply.finished", attempt=1, outcome="retry",
                      at=1, duration_ms=1, status_code=500, next_at=0)
    assert await hooks.record(msgspec.structs.replace(delivery, takes=2), attempt) is False  # not the latest take
    assert await hooks.record(delivery, attempt) is True
    assert await hooks.record(delivery, attempt) is False  # recorded already (the job ran twice)
    ((again, number, take),) = await hooks.take_due(60_000)  # due again at once (next_at 0)
    assert (again, number, take) == (did, 2, 2)
    assert [e["outcome"] for e in await hooks.attempts(delivery.endpoint_id)] == ["retry"]
    delivered = await hooks.delivery(did)
    assert delivered is not None
    done = Attempt(delivery_id=did, event_id="evt_1", type="reply.finished", attempt=2, outcome="delivered", at=2,
                   duration_ms=1, status_code=200)
    assert await hooks.record(delivered, done) is True
    ended = await hooks.delivery(did)
    assert ended is not None and ended.status == "delivered" and ended.body == b""  # the event's data is not kept


async def test_bad_endpoints_are_refused(store: Store) -> None:
    for url, events in (("ftp://a/b", ["reply.failed"]), ("http:///x", ["reply.failed"]),
                        ("http://a/b", ["nothing"]), ("http://a/b", [])):
        with pytest.raises(BadRequest):
            await store.webhooks.add(url, events)
    assert await store.webhooks.endpoints() == []


async def test_erasing_a_user_erases_the_deliveries_about_them_not_yet_sent(store: Store) -> None:
    hooks: Webhooks = store.webhooks
    endpoint = await hooks.add("https://example.test/e", ["reply.finished"])

    def did(event_id: str) -> str:
        return delivery_id(event_id, endpoint.webhook_id)

    await hooks.emit("reply.finished", "evt_e1", {"userId": "er-ana", "text": "ana's plans"}, 1000)
    await hooks.emit("reply.finished", "evt_e2", {"userId": "er-bo", "threadOwner": "er-ana", "text": "in ana's"}, 1000)
    await hooks.emit("reply.finished", "evt_e3", {"userId": "er-bo", "text": "bo's own"}, 1000)
    sent = await hooks.emit("reply.finished", "evt_e4", {"userId": "er-ana", "text": "sent already"}, 1000)
    assert sent == 1
    (taken,) = [t for t in await hooks.take_due(60_000) if t[0] == did("evt_e4")]
    delivery = await hooks.delivery(taken[0])
    assert delivery is not None
    assert await hooks.record(delivery, Attempt(delivery_id=taken[0], event_id="evt_e4", type="reply.finished",
                                                attempt=1, outcome="delivered", at=2, duration_ms=1, status_code=200))
    await store.redis.zadd(keys.WEBHOOK_DUE, {did(e): 0 for e in ("evt_e1", "evt_e2", "evt_e3")})  # (due again)

    assert await hooks.erase_user("er-ana") == 2  # the two not sent; the delivered one kept no body anyway
    for event_id in ("evt_e1", "evt_e2"):
        erased = await hooks.delivery(did(event_id))
        assert erased is not None and (erased.status, erased.body) == ("erased", b"")
    assert (await hooks.delivery(did("evt_e4"))).status == "delivered"  # type: ignore[union-attr]
    kept = await hooks.delivery(did("evt_e3"))
    assert kept is not None and kept.status == "pending" and b"bo's own" in kept.body
    assert [t[0] for t in await hooks.take_due(60_000)] == [did("evt_e3")]  # the erased are never attempted
    assert await hooks.emit("reply.finished", "evt_e1", {"userId": "er-ana", "text": "again"}, 1000) == 0
    assert await hooks.erase_user("er-ana") == 0
    assert not await store.redis.exists(keys.webhook_user_deliveries("er-ana"))
