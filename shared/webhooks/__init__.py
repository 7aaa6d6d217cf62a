"""Webhooks: signed notices to an app's other services when a reply, a workflow run or a usage limit
has news (records.EVENTS); see store.py for how a delivery happens once and is retried."""

from threadline.shared.webhooks.records import EVENTS, Attempt, Delivery, Endpoint
from threadline.shared.webhooks.store import Webhooks, delivery_id

__all__ = ["EVENTS", "Attempt", "Delivery", "Endpoint", "Webhooks", "delivery_id"]
