"""The browser side: the JavaScript client, the chat page and the playground."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from threadline.server.context import Services
from threadline.server.http_api import json_response
from threadline.shared.auth import mint
from threadline.shared.errors import NotFound

STATIC = Path(__file__).parent / "static"
DEV_USER = "dev"




def routes(services: Services) -> list[BaseRoute]:
    async def chat(request: Request) -> Response:
        return FileResponse(STATIC / "chat.html", headers={"Cache-Control": "no-cache"})

    async def playground(request: Request) -> Response:
        return FileResponse(STATIC / "playground.html", headers={"Cache-Control": "no-cache"})

    async def dev_token(request: Request) -> Response:
        """Dev mode only (no AUTH_SECRET given): a token for the dev user (admin with ?admin=1)."""
        if not services.dev_mode:
            raise NotFound("no dev token: AUTH_SECRET is set")
        admin = request.query_params.get("admin") == "1"
        return json_response({"token": mint(services.secret, DEV_USER, admin=admin), "userId": DEV_USER})

    return [
        Route("/", chat, methods=["GET"]),
        Route("/playground", playground, methods=["GET"]),
        Route("/client.js", lambda r: FileResponse(STATIC / "client.js", media_type="text/javascript"), methods=["GET"]),
        Route("/client.d.ts", lambda r: FileResponse(STATIC / "client.d.ts", media_type="text/plain"), methods=["GET"]),
        Route("/react.js", lambda r: FileResponse(STATIC / "react.js", media_type="text/javascript"), methods=["GET"]),
        Route("/react.d.ts", lambda r: FileResponse(STATIC / "react.d.ts", media_type="text/plain"), methods=["GET"]),
        Route("/api/dev-token", dev_token, methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
