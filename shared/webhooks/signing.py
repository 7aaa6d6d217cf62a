"""Signatures of webhook deliveries, as the Standard Webhooks specification has them (what its
libraries verify, e.g. ``standardwebhooks`` and ``svix``): HMAC-SHA256 with the endpoint's secret over
``<webhook-id>.<webhook-timestamp>.<body>``, sent as ``webhook-signature: v1,<base64>``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh endpoint secret: ``whsec_`` and 32 random bytes in base64."""
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signature(secret: str, delivery_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(PREFIX))
    mac = hmac.new(key, f"{delivery_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def headers(secret: str, delivery_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers of one attempt (``timestamp``: its Unix seconds; a retry signs anew)."""
    return {"content-type": "application/json", "webhook-id": delivery_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(secret, delivery_id, timestamp, body)}
