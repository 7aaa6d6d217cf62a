"""Web apps on other origins (CORS_ORIGINS): CORS on the API and the client modules, and which
origins may open ``/ws``.

Without CORS_ORIGINS nothing changes: browsers keep other origins from reading the API (no CORS
headers) and ``/ws`` takes any origin, as tokens travel in the connect frame, not in cookies. With
it, the API and the client modules answer those origins' preflights and requests, and ``/ws``
refuses a browser whose ``Origin`` is neither the server's own nor in the list.
"""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from threadline.shared.config import Settings

CLIENT_MODULES = frozenset({"/client.js", "/client.d.ts", "/react.js", "/react.d.ts"})
ALLOWED_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key", "X-Request-Id", "Last-Event-ID", "Range"]
EXPOSED_HEADERS = ["X-Request-Id", "Retry-After", "Content-Range", "Content-Disposition",
                   "x-vercel-ai-ui-message-stream"]


def origins_of(settings: Settings) -> list[str]:
    """The origins CORS_ORIGINS lets in (empty: none but the server's own)."""
    return [o.strip().rstrip("/") for o in (settings.cors_origins or "").split(",") if o.strip()]


class Cors:
    """CORS (Starlette's middleware) on the API and the client modules only."""

    def __init__(self, app: ASGIApp, origins: list[str]) -> None:
        self._app = app
        # bearer tokens, not cookies: no credentials, so "*" is as safe as a list
        self._cors = CORSMiddleware(app, allow_origins=origins, allow_methods=["GET", "POST", "PATCH", "DELETE"],
                                    allow_headers=ALLOWED_HEADERS, expose_headers=EXPOSED_HEADERS, max_age=600)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path.startswith("/api/") or path in CLIENT_MODULES:
            await self._cors(scope, receive, send)
        else:
            await self._app(scope, receive, send)


def websocket_origin_allowed(settings: Settings, origin: str | None, host: str | None, secure: bool) -> bool:
    """May a browser on ``origin`` open /ws? Clients that send no Origin (servers, scripts) may."""
    allowed = origins_of(settings)
    if origin is None or not allowed or "*" in allowed:
        return True
    origin = origin.rstrip("/")
    own = f"{'https' if secure else 'http'}://{host}" if host else None
    public = settings.public_url.rstrip("/").split("/", 3)[:3] if settings.public_url else None
    return origin in allowed or origin == own or (public is not None and origin == "/".join(public))
