"""Who is calling: the one place an HTTP request is authenticated (the WebSocket's connect frame
goes through the same verifier)."""

from __future__ import annotations

from starlette.requests import Request

from threadline.server.context import Context, Services
from threadline.shared.auth import Identity, bearer
from threadline.shared.errors import Forbidden


async def identity_of(services: Services, request: Request) -> Identity:
    """The caller of ``request``: its ``Authorization: Bearer`` token, verified (Unauthorized
    when it is missing or not valid)."""
    return await services.verifier.verify(bearer(request.headers.get("authorization")))


async def context_of(services: Services, request: Request) -> Context:
    """An operation of the request's caller."""
    return Context(services, await identity_of(services, request))


async def admin_of(services: Services, request: Request, why: str) -> Identity:
    """The caller, who must hold the admin claim (Forbidden, saying ``why``, otherwise)."""
    identity = await identity_of(services, request)
    if not identity.admin:
        raise Forbidden(why)
    return identity
