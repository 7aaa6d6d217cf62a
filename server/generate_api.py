"""POST /api/generate: one answer outside any thread, for one-off calls (classify a ticket, extract
fields from a text). Nothing is saved and nothing streams; the call is counted in the usage ledger
and the rate limits as the caller's replies are (shared.generation.alone)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from threadline.server.auth import context_of
from threadline.server.context import Services
from threadline.server.http_api import _body, _convert, json_response
from threadline.shared.agents import agent_named
from threadline.shared.agents.request import ReplyOptions, ReplyRequest, admit
from threadline.shared.generation.alone import generate_alone
from threadline.shared.records import Message, TextPart

Text = Annotated[str, msgspec.Meta(max_length=500_000)]


class Turn(msgspec.Struct, forbid_unknown_fields=True):
    """A message the model sees before the prompt."""

    role: Literal["user", "assistant", "system"]
    content: Text


class GenerateBody(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    prompt: Annotated[str, msgspec.Meta(min_length=1, max_length=500_000)]
    agent_name: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    messages: Annotated[list[Turn], msgspec.Meta(max_length=200)] = []
    context: dict[str, Any] | None = None
    options: ReplyOptions | None = None


def routes(services: Services) -> list[Route]:
    async def generate(request: Request) -> Response:
        """{prompt, agentName?, messages?, context?, options?} -> {outcome, text, object?, usage, error?}."""
        ctx = await context_of(services, request)
        body = _convert(await _body(request), GenerateBody)
        agent = agent_named(services.settings.app_module, body.agent_name)
        admit(agent, body.context, body.options)
        turns = [Message(message_id="", thread_id="", user_id=ctx.user_id, role=t.role, text=t.content,
                         parts=[TextPart(text=t.content)]) for t in body.messages]
        request_of = ReplyRequest(context=body.context, options=body.options, admin=ctx.identity.admin,
                                  claims=ctx.identity.claims)
        result = await generate_alone(services.runtime, agent, body.prompt, user_id=ctx.user_id,
                                      teams=ctx.identity.teams, messages=turns, request=request_of)
        out: dict[str, Any] = {"outcome": result.outcome, "text": result.text, "usage": result.usage}
        if agent.output is not None:
            out["object"] = result.object
        if result.outcome != "finished":
            out["error"] = (result.messages[-1].error if result.messages else None) or result.outcome
        return json_response(out)

    return [Route("/api/generate", generate, methods=["POST"])]
