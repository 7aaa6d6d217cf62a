"""Mutations: the writes a client may ask for, by name, shared by WebSocket and HTTP."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from server import args as A
from server.context import Context
from shared import keys
from shared.errors import BadRequest, Unavailable
from shared.records import Message, Part, TextPart, text_of


@dataclass(slots=True)
class Outcome:
    """What a mutation returns: its value, the version it wrote, the channels it changed."""

    value: Any
    version: int = 0
    channels: list[str] = field(default_factory=list)


Handler = Callable[[Context, Any], Awaitable[Outcome]]


@dataclass(frozen=True, slots=True)
class Mutation:
    name: str
    args_type: type
    handler: Handler


MUTATIONS: dict[str, Mutation] = {}


def mutation(name: str, args_type: type) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        MUTATIONS[name] = Mutation(name, args_type, fn)
        return fn

    return register


@mutation("threads.create", A.ThreadsCreate)
async def create_thread(ctx: Context, a: A.ThreadsCreate) -> Outcome:
    thread = await ctx.store.threads.create(
        ctx.user_id, title=a.title, summary=a.summary, metadata=a.metadata
    )
    version = await ctx.store.threads.list_version(ctx.user_id)
    return Outcome({"threadId": thread.thread_id}, version, [keys.user_channel(ctx.user_id)])


@mutation("threads.update", A.ThreadsUpdate)
async def update_thread(ctx: Context, a: A.ThreadsUpdate) -> Outcome:
    thread = await ctx.store.threads.update(
        a.thread_id, ctx.user_id, title=a.title, summary=a.summary, status=a.status, metadata=a.metadata
    )
    version = await ctx.store.threads.version(a.thread_id)
    return Outcome(
        thread, version, [keys.thread_channel(a.thread_id), keys.user_channel(ctx.user_id)]
    )


@mutation("threads.delete", A.ThreadRef)
async def delete_thread(ctx: Context, a: A.ThreadRef) -> Outcome:
    await ctx.store.delete_thread(a.thread_id, ctx.user_id)
    version = await ctx.store.threads.list_version(ctx.user_id)
    return Outcome(
        {"deleted": True}, version, [keys.thread_channel(a.thread_id), keys.user_channel(ctx.user_id)]
    )


def _message_of(a: A.MessagesSend) -> Message:
    if (a.prompt is None) == (a.message is None):
        raise BadRequest("give exactly one of `prompt` or `message`")
    if a.prompt is not None:
        role, parts = "user", [TextPart(text=a.prompt)]
    else:
        assert a.message is not None
        role = a.message.role
        content = a.message.content
        parts = [TextPart(text=content)] if isinstance(content, str) else list[Part](content)
    text = text_of(parts)
    if not parts or (role == "user" and not text.strip()):
        raise BadRequest("the message is empty")
    if a.generate and role != "user":
        raise BadRequest("`generate` needs a user message; send other roles with generate:false")
    return Message(
        message_id="",
        thread_id=a.thread_id,
        role=role,  # type: ignore[arg-type]
        text=text,
        parts=parts,
        agent_name=a.agent_name,
        client_message_id=a.client_message_id,
    )


@mutation("messages.send", A.MessagesSend)
async def send_message(ctx: Context, a: A.MessagesSend) -> Outcome:
    message = _message_of(a)
    generation = ctx.services.generation
    if a.generate and generation is None:
        raise Unavailable("generation is not available on this server; send generate:false")
    version, (saved,) = await ctx.store.messages.save(
        a.thread_id, ctx.user_id, [message], order=a.order, prompt_message_id=a.prompt_message_id
    )
    if a.generate:
        await generation.enqueue(ctx, saved, a.agent_name)
    return Outcome(
        {"messageId": saved.message_id, "order": saved.order},
        version,
        [keys.thread_channel(a.thread_id)],
    )


@mutation("messages.delete", A.MessagesDelete)
async def delete_messages(ctx: Context, a: A.MessagesDelete) -> Outcome:
    count, versions = await ctx.store.messages.delete(a.message_ids, ctx.user_id)
    return Outcome(
        {"deleted": count},
        max(versions.values(), default=0),
        [keys.thread_channel(t) for t in versions],
    )


@mutation("messages.deleteRange", A.MessagesDeleteRange)
async def delete_message_range(ctx: Context, a: A.MessagesDeleteRange) -> Outcome:
    count, version = await ctx.store.messages.delete_range(
        a.thread_id,
        ctx.user_id,
        start_order=a.start_order,
        end_order=a.end_order,
        start_step_order=a.start_step_order,
        end_step_order=a.end_step_order,
    )
    return Outcome({"deleted": count}, version, [keys.thread_channel(a.thread_id)])
