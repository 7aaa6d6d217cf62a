"""Spend over HTTP: a user's own usage per billing period (admins: any user's, the whole app's,
and a CSV export of the ledger entries, for invoices), and where their rate limits stand."""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from threadline.server.auth import identity_of
from threadline.server.context import Context, Services
from threadline.server.http_api import _convert, json_response
from threadline.server.queries import QUERIES
from threadline.shared.errors import Forbidden
from threadline.shared.usage.ledger import check_period, to_csv

ALL = "*"


def routes(services: Services) -> list[Route]:
    ledger = services.usage

    async def usage(request: Request) -> Response:
        """GET ?period= (default: the current one) &userId= (admins: any user, or * for the app)
        &format=csv (the ledger entries)."""
        identity = await identity_of(services, request)
        q = request.query_params
        period = check_period(q["period"]) if q.get("period") else ledger.current_period()
        user_id = q.get("userId") or identity.user_id
        if (user_id != identity.user_id or user_id == ALL) and not identity.admin:
            raise Forbidden("only admins read another user's usage or the whole app's")
        if user_id == ALL:
            _, summary = await ledger.summary(None, period)
            users = [{"userId": u, "costMicros": c} for u, c in await ledger.users(period)]
            return json_response({**msgspec.to_builtins(summary), "users": users})
        if q.get("format") == "csv":
            body = to_csv(await ledger.entries(user_id, period))
            return Response(body, 200, {"Content-Disposition": f'attachment; filename="usage-{period}.csv"'},
                            media_type="text/csv; charset=utf-8")
        _, summary = await ledger.summary(user_id, period)
        return json_response(summary)

    async def rate_limit(request: Request) -> Response:
        """GET ?agentName=: the rateLimit.status query (may the caller send now, and when)."""
        identity = await identity_of(services, request)
        query = QUERIES["rateLimit.status"]
        args = _convert({k: v for k, v in request.query_params.items() if k == "agentName"}, query.args_type)
        _, value = await query.run(Context(services, identity), args)
        return json_response(value)

    return [Route("/api/usage", usage, methods=["GET"]), Route("/api/rate-limit", rate_limit, methods=["GET"])]

