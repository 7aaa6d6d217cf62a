"""The playground's API: browse any user's threads, try agents and context options.

Every route needs a token with the admin claim (``python -m threadline.server token ops --admin``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from threadline.server.auth import admin_of, identity_of
from threadline.server.context import Context, Services
from threadline.server.http_api import _body, _convert, json_response
from threadline.server.mutate import run_mutation, value_of
from threadline.server.queries import QUERIES
from threadline.shared.agents import SaveMessages, agent_named, load_agents
from threadline.shared.auth import Identity
from threadline.shared.errors import BadRequest
from threadline.shared.generation.runner import Generation
from threadline.shared.generation.sinks import MemorySink
from threadline.shared.records import Message, TextPart
from threadline.shared.storage.pagination import parse_digits


class AdminSend(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    prompt: str
    agent_name: str | None = None
    save_messages: SaveMessages = "promptAndOutput"


def _agents_view(app_module: str) -> list[dict[str, Any]]:
    out = []
    for a in load_agents(app_module).values():
        built = f"(built for each reply by {getattr(a.instructions, '__name__', 'a callable')})"
        out.append({"name": a.name, "model": a.model,
                    "instructions": a.instructions if isinstance(a.instructions, str) else built,
                    "tools": [t.name for t in a.tools], "humanTools": [t.name for t in a.tools if t.handler is None],
                    "maxSteps": a.max_steps, "saveMessages": a.save_messages,
                    "contextOptions": msgspec.to_builtins(a.context_options), "doubleTexting": a.double_texting,
                    "output": getattr(a.output, "__name__", None)})
    return out


def routes(services: Services) -> list[Route]:
    async def admin(request: Request) -> Identity:
        return await admin_of(services, request, "the playground needs a token with the admin claim")

    async def user(request: Request) -> Identity:
        return await identity_of(services, request)

    async def agents(request: Request) -> Response:
        await user(request)
        return json_response({"agents": _agents_view(services.settings.app_module)})

    async def users(request: Request) -> Response:
        await admin(request)
        return json_response({"users": await services.store.threads.users()})

    async def user_threads(request: Request) -> Response:
        await admin(request)
        _, page = await services.store.threads.list(request.path_params["user_id"], num_items=100)
        return json_response(page)

    async def thread_messages(request: Request) -> Response:
        await admin(request)
        tid = request.path_params["thread_id"]
        num = parse_digits(request.query_params.get("numItems", "50"), "numItems", 100)
        if num < 1:
            raise BadRequest("`numItems` must be 1-100")
        streams: list[Any] = []
        _, page = await services.store.messages.list(tid, None, num_items=num,
                                                     cursor=request.query_params.get("cursor"), streams=streams)
        return json_response({"page": page.page, "continueCursor": page.continue_cursor,
                              "isDone": page.is_done, "streams": streams})

    async def send(request: Request) -> Response:
        await admin(request)
        args = _convert(await _body(request), AdminSend)
        thread = await services.store.threads.get(request.path_params["thread_id"])
        owner = Context(services, Identity(thread.user_id))
        if args.save_messages == "none":
            agent = dataclasses.replace(agent_named(services.settings.app_module, args.agent_name),
                                        save_messages="none")
            prompt = Message(message_id="", thread_id=thread.thread_id, user_id=thread.user_id,
                             text=args.prompt, parts=[TextPart(text=args.prompt)])
            sink = MemorySink(services.store, thread.thread_id, memory=services.memory)
            result = await Generation(services.runtime, agent, prompt, sink).run()
            return json_response({"saved": False, "outcome": result.outcome, "text": result.text,
                                  "usage": result.usage})
        send = {"threadId": thread.thread_id, "prompt": args.prompt, "agentName": args.agent_name}
        value = value_of(await run_mutation(owner, "messages.send", send, None))
        return json_response({"saved": True, **value})

    async def namespaces(request: Request) -> Response:
        await admin(request)
        return json_response({"namespaces": await services.store.documents.namespaces()})

    async def workflow_runs(request: Request) -> Response:
        """Every user's workflow runs, newest first (``numItems``, ``cursor``); a run's steps come
        from GET /api/workflows/{runId} (an admin token reads any run)."""
        await admin(request)
        num = parse_digits(request.query_params.get("numItems", "50"), "numItems", 100)
        _, page = await services.workflows.runs(None, num_items=max(num, 1), cursor=request.query_params.get("cursor"))
        return json_response(page)

    async def context(request: Request) -> Response:
        """The context.fetch query, for any user's thread (as its owner)."""
        await admin(request)
        tid = request.path_params["thread_id"]
        thread = await services.store.threads.get(tid)
        query = QUERIES["context.fetch"]
        args = _convert({**await _body(request), "threadId": tid}, query.args_type)
        _, value = await query.run(Context(services, Identity(thread.user_id)), args)
        return json_response(value)

    return [
        Route("/api/agents", agents, methods=["GET"]),
        Route("/api/admin/users", users, methods=["GET"]),
        Route("/api/admin/users/{user_id}/threads", user_threads, methods=["GET"]),
        Route("/api/admin/namespaces", namespaces, methods=["GET"]),
        Route("/api/admin/workflows", workflow_runs, methods=["GET"]),
        Route("/api/admin/threads/{thread_id}/messages", thread_messages, methods=["GET"]),
        Route("/api/admin/threads/{thread_id}/send", send, methods=["POST"]),
        Route("/api/admin/threads/{thread_id}/context", context, methods=["POST"]),
    ]
