"""A user's data on request over HTTP: download it as an archive (shared.userdata.export; admins, or the user
themself unless EXPORT_SELF_SERVICE is off), erase it (admins, or the user themself where the app
allows: ERASE_SELF_SERVICE) and read how the erasure stands. Erasing is a workers' job
(shared.userdata.erasure)."""

from __future__ import annotations

import hashlib

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from threadline.server.auth import identity_of
from threadline.server.context import Services
from threadline.server.http_api import json_response
from threadline.shared.auth import Identity
from threadline.shared.errors import Forbidden
from threadline.shared.userdata.erasure import Erasures
from threadline.shared.userdata.export import export_user

ERASE_JOB = "threadline.workers.maintenance.erase_user"


def routes(services: Services) -> list[Route]:
    erasures = Erasures(services.runtime)

    async def allowed(request: Request, what: str, self_service: bool, setting: str) -> tuple[Identity, str]:
        identity = await identity_of(services, request)
        user_id = request.path_params["user_id"]
        if not identity.admin and not (self_service and user_id == identity.user_id):
            raise Forbidden(f"only admins {what} a user's data" + (
                "" if self_service else f" ({setting} lets users {what} their own)"))
        return identity, user_id

    async def export(request: Request) -> Response:
        """GET: every record of the user as a tar of JSON lines and files, made as it is sent."""
        _, user_id = await allowed(request, "export", services.settings.export_self_service, "EXPORT_SELF_SERVICE")
        name = f"threadline-{''.join(c if c.isalnum() else '_' for c in user_id)[:60]}.tar"
        return StreamingResponse(export_user(services.runtime, user_id), media_type="application/x-tar",
                                 headers={"Content-Disposition": f'attachment; filename="{name}"'})

    async def erase(request: Request) -> Response:
        """POST: erase every record of the user (202, the erasure as it stands); GET: how it stands."""
        identity, user_id = await allowed(request, "erase", services.settings.erase_self_service,
                                          "ERASE_SELF_SERVICE")
        if request.method == "GET":
            return json_response(await erasures.view(user_id))
        view = await erasures.ask(user_id, identity.user_id)
        if services.generation is not None:  # (else the cron's resume_erasures takes it up)
            digest = hashlib.sha256(f"{user_id}\0{view.requested_at}".encode()).hexdigest()[:32]
            await services.generation.enqueue_task(ERASE_JOB, user_id, job_id=f"erase-{digest}")
        return json_response(view, 202)

    return [Route("/api/users/{user_id}/erase", erase, methods=["GET", "POST"]),
            Route("/api/users/{user_id}/export", export, methods=["GET"])]
