"""Every HTTP request gets an id (the client's ``X-Request-Id``, or a new one) for its log records."""

from __future__ import annotations

import secrets

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from threadline.shared import logs

HEADER = b"x-request-id"


class RequestIds:
    """ASGI middleware: sets ``shared.logs.request_id`` and echoes it in the response headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(HEADER, b"").decode("latin-1")
        rid = given if 0 < len(given) <= 128 and given.isprintable() else secrets.token_hex(8)
        logs.request_id.set(rid)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (HEADER, rid.encode("latin-1"))]
            await send(message)

        await self.app(scope, receive, send_with_id)
