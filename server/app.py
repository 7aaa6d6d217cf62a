"""The ASGI application: HTTP API, WebSocket endpoint, pages."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from threadline.server import (
    admin_api,
    ai_sdk,
    files_api,
    generate_api,
    pages,
    usage_api,
    userdata_api,
    webhooks_api,
)
from threadline.server.context import Services
from threadline.server.cors import Cors, origins_of
from threadline.server.delta_log import DeltaLog
from threadline.server.fanout import ChangeListener
from threadline.server.http_api import chat_error_handler, json_response, routes
from threadline.server.live import LiveQueries
from threadline.server.reaper import StreamReaper
from threadline.server.reply_queue import ReplyQueue
from threadline.server.request_ids import RequestIds
from threadline.server.ws.session import Session
from threadline.shared import gc_tuning
from threadline.shared.auth import resolve_secret
from threadline.shared.config import Settings, load_settings
from threadline.shared.errors import ChatError
from threadline.shared.runtime import Runtime

log = logging.getLogger(__name__)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "bad_request"}.get(exc.status_code, "bad_request")
    return json_response({"code": code, "message": exc.detail}, exc.status_code)


class _App(Starlette):
    """Starlette, except that a WebSocket to ``/ws`` goes straight to its session: a connection lives
    for hours, and each middleware and routing layer it would pass keeps a coroutine frame as long
    (about 5 KB per connection in all; none of them does anything for it)."""

    services: Services | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == "/ws" and self.services is not None:
            scope["app"] = self
            await Session(WebSocket(scope, receive, send), self.services).run()
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None) -> Starlette:
    """The web application for ``settings`` (read from the environment when None)."""
    settings = settings or load_settings()
    secret, dev_mode = resolve_secret(settings)
    runtime = Runtime(settings)
    store = runtime.store
    listener = ChangeListener(runtime.redis)
    generation = ReplyQueue(settings, store)
    reaper = StreamReaper(store, stale_ms=settings.stream_stale_ms, grace_ms=settings.stream_grace_ms,
                          generation=generation)
    services = Services(runtime=runtime, secret=secret, dev_mode=dev_mode, listener=listener,
                        live=LiveQueries(listener, DeltaLog(store)), limiter=runtime.limits,
                        generation=generation, reaper=reaper)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        listener.start()
        reaper.start()
        gc_tuning.tune(settings.gc_thresholds)
        try:
            yield
        finally:
            await reaper.stop()
            await listener.stop()
            generation.close()
            await runtime.close()

    async def websocket_endpoint(websocket: WebSocket) -> None:  # /ws under a root path (else _App)
        await Session(websocket, services).run()

    app = _App(
        routes=[*routes(services), *ai_sdk.routes(services), *files_api.routes(services), *usage_api.routes(services), *userdata_api.routes(services), *generate_api.routes(services), *admin_api.routes(services), *webhooks_api.routes(services), *pages.routes(services),
                WebSocketRoute("/ws", websocket_endpoint)],
        lifespan=lifespan,
        exception_handlers={ChatError: chat_error_handler, HTTPException: _http_error},
        middleware=[Middleware(RequestIds), *([Middleware(Cors, origins=origins_of(settings))]
                                              if settings.cors_origins else [])],
    )
    app.state.services = services
    app.services = services
    return app
