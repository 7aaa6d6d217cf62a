"""Webhook endpoints over HTTP (admin tokens only): register, list, remove, and read an endpoint's
delivery log. What is sent and how it is signed: docs/webhooks.md."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from threadline.server.auth import admin_of
from threadline.server.context import Services
from threadline.server.http_api import _body, _convert, json_response
from threadline.shared.storage.pagination import parse_digits
from threadline.shared.webhooks.records import NewEndpoint


def routes(services: Services) -> list[Route]:
    hooks = services.store.webhooks

    async def admin(request: Request) -> None:
        await admin_of(services, request, "webhooks need a token with the admin claim")

    async def add(request: Request) -> Response:
        await admin(request)
        new = _convert(await _body(request), NewEndpoint)
        endpoint = await hooks.add(new.url, new.events, new.description)
        return json_response({**endpoint.view(), "secret": endpoint.secret}, 201)

    async def listed(request: Request) -> Response:
        await admin(request)
        return json_response({"webhooks": [e.view() for e in await hooks.endpoints()]})

    async def one(request: Request) -> Response:
        await admin(request)
        wid = request.path_params["webhook_id"]
        if request.method == "DELETE":
            await hooks.delete(wid)
            return json_response({"deleted": True})
        return json_response((await hooks.get(wid)).view())

    async def deliveries(request: Request) -> Response:
        await admin(request)
        limit = parse_digits(request.query_params.get("limit", "50"), "limit", 200)
        return json_response({"attempts": await hooks.attempts(request.path_params["webhook_id"], max(limit, 1))})

    return [
        Route("/api/admin/webhooks", add, methods=["POST"]),
        Route("/api/admin/webhooks", listed, methods=["GET"]),
        Route("/api/admin/webhooks/{webhook_id}", one, methods=["GET", "DELETE"]),
        Route("/api/admin/webhooks/{webhook_id}/deliveries", deliveries, methods=["GET"]),
    ]
