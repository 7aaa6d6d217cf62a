"""What the webhooks feature stores and shows: endpoints, the events they take, attempts."""

from __future__ import annotations

from typing import Literal

import msgspec

EVENTS = ("reply.finished", "reply.failed", "workflow.finished", "usage.limit_reached")
EventType = Literal["reply.finished", "reply.failed", "workflow.finished", "usage.limit_reached"]
Outcome = Literal["delivered", "retry", "failed"]
MAX_ENDPOINTS = 100
MAX_URL = 2048


class Endpoint(msgspec.Struct, rename="camel", kw_only=True):
    """A registered receiver: its URL, the events it takes and the secret deliveries are signed with."""

    webhook_id: str
    url: str
    events: list[str]
    secret: str
    description: str = ""
    created_at: int = 0

    def view(self) -> dict[str, object]:
        """As listed (the secret is shown once, when the endpoint is added)."""
        return {"webhookId": self.webhook_id, "url": self.url, "events": self.events,
                "description": self.description, "createdAt": self.created_at}


class Attempt(msgspec.Struct, rename="camel", kw_only=True, omit_defaults=True):
    """One attempt of a delivery, as the endpoint's log keeps it."""

    delivery_id: str
    event_id: str
    type: str
    attempt: int
    outcome: Outcome
    at: int
    duration_ms: int
    status_code: int | None = None
    error: str | None = None
    next_at: int | None = None


class Delivery(msgspec.Struct, kw_only=True):
    """One event's delivery to one endpoint, as stored."""

    delivery_id: str
    endpoint_id: str
    event_id: str
    type: str
    body: bytes
    attempt: int
    takes: int
    status: str  # pending | delivered | failed | dropped | erased (its user's data was erased before it was sent)


class NewEndpoint(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """The body of ``POST /api/admin/webhooks``."""

    url: str
    events: list[str]
    description: str = ""
