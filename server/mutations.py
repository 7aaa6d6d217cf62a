"""Mutations: the writes a client may ask for, by name, shared by WebSocket and HTTP."""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from threadline.server import args as A
from threadline.server.context import Context
from threadline.shared import keys
from threadline.shared.agents import Agent, agent_named
from threadline.shared.agents.request import ReplyOptions, ReplyRequest, admit, fixed_chars
from threadline.shared.documents.parsing import check_document
from threadline.shared.documents.store import namespace_for
from threadline.shared.errors import BadRequest, Conflict, Forbidden, Unavailable
from threadline.shared.faults import crash_point
from threadline.shared.files.refs import file_ids
from threadline.shared.records import (
    FilePart,
    ImagePart,
    Message,
    Part,
    TextPart,
    text_of,
)
from threadline.shared.schedules import Action, SendPrompt, StartWorkflow, schedule_id_for
from threadline.shared.schedules.timing import check_timing
from threadline.shared.storage.guard import in_namespace, in_thread, recorded
from threadline.shared.streams.store import thread_of_stream
from threadline.shared.threads.snippets import Edit, thread_of_snippet
from threadline.shared.threads.working_memory import channel as working_memory_channel
from threadline.shared.usage.limits import Who
from threadline.shared.workflows.definition import workflow_named


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
    repeatable: bool = False  # running it again is the same as once: no outcome is kept for its request


MUTATIONS: dict[str, Mutation] = {}


def mutation(name: str, args_type: type, *, repeatable: bool = False) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        MUTATIONS[name] = Mutation(name, args_type, fn, repeatable)
        return fn

    return register


@mutation("threads.create", A.ThreadsCreate)
async def create_thread(ctx: Context, a: A.ThreadsCreate) -> Outcome:
    thread = await ctx.store.threads.create(
        ctx.user_id, title=a.title, summary=a.summary, metadata=a.metadata, guard=ctx.guard
    )
    version = await ctx.store.threads.list_version(ctx.user_id)
    return Outcome({"threadId": thread.thread_id}, version, [keys.user_channel(ctx.user_id)])


@mutation("threads.update", A.ThreadsUpdate)
async def update_thread(ctx: Context, a: A.ThreadsUpdate) -> Outcome:
    await ctx.store.threads.update(
        a.thread_id, ctx.user_id, title=a.title, summary=a.summary, status=a.status, metadata=a.metadata
    )
    version, thread = await ctx.store.threads.get_versioned(a.thread_id, ctx.user_id)
    return Outcome(
        thread, version, [keys.thread_channel(a.thread_id), keys.user_channel(ctx.user_id)]
    )


@mutation("threads.delete", A.ThreadRef)
async def delete_thread(ctx: Context, a: A.ThreadRef) -> Outcome:
    await ctx.store.delete_thread(a.thread_id, ctx.user_id, ctx.guard)
    version = await ctx.store.threads.list_version(ctx.user_id)
    return Outcome(
        {"deleted": True}, version, [keys.thread_channel(a.thread_id), keys.user_channel(ctx.user_id)]
    )


@mutation("threads.members.add", A.MembersAdd)
async def add_member(ctx: Context, a: A.MembersAdd) -> Outcome:
    """The owner lets ``userId`` into the thread as a writer (sends, is answered) or a reader
    (watches); again with another role changes it. The thread comes into their own list."""
    version, changed = await ctx.store.threads.add_member(a.thread_id, ctx.owner_or_any, a.user_id, a.role)
    return Outcome({"threadId": a.thread_id, "userId": a.user_id, "role": a.role, "changed": changed}, version,
                   [keys.thread_channel(a.thread_id), keys.user_channel(ctx.user_id), keys.user_channel(a.user_id)])


@mutation("threads.members.remove", A.MembersRemove)
async def remove_member(ctx: Context, a: A.MembersRemove) -> Outcome:
    """The owner takes a member out, or a member leaves (their own userId)."""
    version, changed = await ctx.store.threads.remove_member(a.thread_id, ctx.owner_or_any, a.user_id)
    return Outcome({"threadId": a.thread_id, "userId": a.user_id, "removed": changed}, version,
                   [keys.thread_channel(a.thread_id), keys.user_channel(ctx.user_id), keys.user_channel(a.user_id)])


@mutation("threads.takeover", A.ThreadsTakeover)
async def take_over(ctx: Context, a: A.ThreadsTakeover) -> Outcome:
    """A person answers in the thread from now on: its agents stop (running and queued replies are
    aborted) and answer no send until ``threads.release``."""
    thread = await ctx.store.threads.get(a.thread_id, ctx.owner_or_any, "owner")  # (staff: any thread)
    version, taken = await ctx.store.take_over(a.thread_id, ctx.user_id, a.agent_name, a.metadata)
    return Outcome(taken, version, [keys.thread_channel(a.thread_id), keys.user_channel(thread.user_id)])


@mutation("threads.release", A.ThreadRef)
async def release(ctx: Context, a: A.ThreadRef) -> Outcome:
    """The thread's agents answer sends again (a prompt sent meanwhile: ``messages.regenerate``)."""
    thread = await ctx.store.threads.get(a.thread_id, ctx.owner_or_any, "owner")
    version, released = await ctx.store.release(a.thread_id)
    return Outcome(released, version, [keys.thread_channel(a.thread_id), keys.user_channel(thread.user_id)])


@mutation("presence.set", A.PresenceSet, repeatable=True)  # (a heartbeat: kept outcomes would pile up)
async def set_presence(ctx: Context, a: A.PresenceSet) -> Outcome:
    """This connection views the thread (say it again within PRESENCE_MS to stay), typing or not."""
    await ctx.store.threads.get(a.thread_id, ctx.owner_or_any)
    presence = ctx.store.presence
    if a.leave:
        version = await presence.leave(a.thread_id, ctx.user_id, ctx.connection)
    else:
        version = await presence.set(a.thread_id, ctx.user_id, ctx.connection, typing=a.typing)
    return Outcome({"threadId": a.thread_id, "here": not a.leave}, version, [keys.presence_channel(a.thread_id)])


def _message_of(a: A.MessagesSend) -> Message:
    if (a.prompt is None) == (a.message is None):
        raise BadRequest("give exactly one of `prompt` or `message`")
    if a.prompt is not None:
        role, parts = "user", list[Part]([TextPart(text=a.prompt)])
    else:
        assert a.message is not None
        role = a.message.role
        content = a.message.content
        parts = list[Part]([TextPart(text=content)]) if isinstance(content, str) else list[Part](content)
    text = text_of(parts)
    if not parts or (role == "user" and not text.strip() and not file_ids(parts)):
        raise BadRequest("the message is empty")
    if a.generate and role not in ("user", "tool"):
        raise BadRequest("`generate` needs a user message (or a tool result); send others with generate:false")
    if a.generate and role == "tool" and a.prompt_message_id is None:
        raise BadRequest("a tool result continues a generation: give the `promptMessageId` it answers")
    return Message(
        message_id="",
        thread_id=a.thread_id,
        role=role,  # type: ignore[arg-type]
        text=text,
        parts=parts,
        agent_name=a.agent_name if role != "user" else None,  # who wrote it, not who answers
        client_message_id=a.client_message_id,
        metadata=a.metadata,
    )


def _request(ctx: Context, context: dict[str, Any] | None, options: ReplyOptions | None) -> ReplyRequest:
    """What the reply is asked beside its prompt, and who asked (shared.agents.request)."""
    return ReplyRequest(context=context, options=options, admin=ctx.identity.admin, claims=ctx.identity.claims)


def _who(ctx: Context, agent: str) -> Who:
    return Who(ctx.user_id, agent, ctx.identity.teams)


async def _tokens_left_for(ctx: Context, agent: Agent, message: Message) -> None:
    """Refuse now (rate_limited, retryAfterMs) a message whose reply the token limits could not
    afford even on the prompt alone; the worker reserves the real estimate before each model call."""
    if ctx.services.limiter is not None:  # (the generation reserves its own before each model call)
        await ctx.services.limiter.afford(_who(ctx, agent.name), len(message.text) + fixed_chars(agent),
                                          agent.max_tokens)


@mutation("messages.send", A.MessagesSend)
async def send_message(ctx: Context, a: A.MessagesSend) -> Outcome:
    return await _send(ctx, a)


@mutation("messages.edit", A.MessagesEdit)
async def edit_message(ctx: Context, a: A.MessagesEdit) -> Outcome:
    """A new version of a user message of the active branch, answered as a send is: it takes that
    message's place, and the message with everything after it stays reachable as another branch
    (messages.branches, messages.switchBranch). Replies still running in the thread are aborted."""
    edited = await ctx.store.messages.get(a.message_id, ctx.user_id, "writer")
    if edited.role != "user":
        raise BadRequest("only a user message can be edited")
    if edited.user_id != ctx.user_id:  # (a writer edits their own; the owner any)
        await ctx.store.threads.check(edited.thread_id, ctx.user_id, "owner")
    send = A.MessagesSend(thread_id=edited.thread_id, prompt=a.prompt, message=a.message, agent_name=a.agent_name,
                          generate=a.generate, client_message_id=a.client_message_id, context=a.context,
                          options=a.options, metadata=a.metadata)
    if a.message is not None and a.message.role != "user":
        raise BadRequest("a new version of a user message is a user message")
    outcome = await _send(ctx, send, edits=edited.message_id)
    outcome.value["edits"] = edited.message_id
    return outcome


@mutation("messages.switchBranch", A.BranchSwitch)
async def switch_branch(ctx: Context, a: A.BranchSwitch) -> Outcome:
    """Show turn ``order`` (a version of an edited message, from messages.branches) and the newest
    turn under it, for every member of the thread."""
    version, leaf = await ctx.store.messages.switch_branch(a.thread_id, ctx.user_id, a.order, ctx.guard)
    return Outcome({"threadId": a.thread_id, "order": a.order, "lastOrder": leaf}, version,
                   [keys.thread_channel(a.thread_id)])


async def _send(ctx: Context, a: A.MessagesSend, edits: str | None = None) -> Outcome:
    message = _message_of(a)
    record = in_thread(ctx.guard, a.thread_id)
    # a resend that finishes its first attempt was admitted then: no second rate-limit or double-texting check
    resumed = await recorded(ctx.store.redis, record)
    generation = ctx.services.generation
    agent = None
    held = False  # a person took the thread over: the message is saved, no agent answers
    owner: str | None = ctx.user_id
    if a.generate:
        if generation is None:
            raise Unavailable("generation is not available on this server; send generate:false")
        agent = generation.agent(a.agent_name)
        admit(agent, a.context, a.options)
        held = (await ctx.store.threads.get(a.thread_id, ctx.user_id, "writer")).takeover is not None
    elif a.context is not None or a.options is not None:
        raise BadRequest("`context` and `options` are for a reply: this send asks for none (generate:false)")
    elif message.role == "assistant" and message.agent_name and ctx.identity.admin:
        owner = None  # staff (admin tokens) write as a human agent in any thread
        message.user_id = ctx.user_id  # (who wrote it)
    if ctx.services.limiter is not None and not resumed:  # every message counts, with the agent it starts
        await ctx.services.limiter.take("messages", _who(ctx, agent.name if agent else ""))
        if agent is not None and not held:
            await ctx.services.limiter.room(_who(ctx, agent.name))  # concurrency caps
            await _tokens_left_for(ctx, agent, message)
    if agent is not None and generation is not None and not held:
        if message.role == "user" and not resumed and agent.double_texting != "enqueue" and edits is None:
            await generation.before_send(a.thread_id, agent)  # (an edit aborts the thread's replies, below)
    if any(isinstance(p, FilePart | ImagePart) for p in message.parts):
        message.parts = await ctx.services.files.attach(ctx.user_id, message.parts)
    if edits is not None and not resumed:  # (the branch they answer is left)
        await ctx.store.streams.abort_replies(a.thread_id)
    version, (saved,) = await ctx.store.messages.save(
        a.thread_id, owner, [message], order=a.order, prompt_message_id=a.prompt_message_id, edits=edits,
        guard=ctx.guard,
    )
    crash_point("send:saved")  # fault tests: the web dies with the message saved, its reply not asked for
    if agent is not None and generation is not None and not held:
        prompt = saved
        if saved.role == "tool":
            assert a.prompt_message_id is not None
            prompt = await ctx.store.messages.get(a.prompt_message_id, ctx.user_id)
        await generation.enqueue(prompt, agent, trigger_id=saved.message_id, teams=ctx.identity.teams,
                                 request=_request(ctx, a.context, a.options))
    return Outcome(
        {"messageId": saved.message_id, "order": saved.order, **({"held": True} if held else {})},
        version,
        [keys.thread_channel(a.thread_id)],
    )


@mutation("messages.regenerate", A.MessagesRegenerate)
async def regenerate(ctx: Context, a: A.MessagesRegenerate) -> Outcome:
    """Answer an existing user message again; its earlier pending replies become failed."""
    generation = ctx.services.generation
    if generation is None:
        raise Unavailable("generation is not available on this server")
    prompt = await ctx.store.messages.get(a.message_id, ctx.user_id, "writer")
    if prompt.user_id != ctx.user_id:  # (its reply is its writer's, counted in their usage)
        await ctx.store.threads.check(prompt.thread_id, ctx.user_id, "owner")
    if prompt.role != "user":
        raise BadRequest("only a user message can be answered again")
    if not await ctx.store.messages.shown(prompt):
        raise Conflict("that message is not on the thread's active branch: switch to it first (messages.switchBranch)")
    agent = generation.agent(a.agent_name)
    admit(agent, a.context, a.options)
    if (await ctx.store.threads.get(prompt.thread_id)).takeover is not None:
        raise Conflict("a person has taken this thread over: release it (threads.release) first")
    if ctx.services.limiter is not None:  # every mutation that starts a generation counts
        await ctx.services.limiter.take("messages", _who(ctx, agent.name))
        await ctx.services.limiter.room(_who(ctx, agent.name))
    await generation.before_send(prompt.thread_id, agent)
    # a resent request (same guard) is the same attempt; an unguarded one is new each time
    attempt = a.attempt or (ctx.guard.digest[:24] if ctx.guard is not None else secrets.token_hex(12))
    await generation.enqueue(prompt, agent, trigger_id=f"{prompt.message_id}-{attempt}", teams=ctx.identity.teams,
                             request=_request(ctx, a.context, a.options))
    version = await ctx.store.threads.version(prompt.thread_id)
    return Outcome({"messageId": prompt.message_id}, version, [])


@mutation("streams.abort", A.StreamsAbort)
async def abort_streams(ctx: Context, a: A.StreamsAbort) -> Outcome:
    if (a.stream_id is None) == (a.thread_id is None):
        raise BadRequest("give exactly one of `streamId` or `threadId`")
    thread_id = a.thread_id or thread_of_stream(a.stream_id or "")
    await ctx.store.threads.check(thread_id, ctx.user_id, "writer")
    if a.stream_id:
        aborted = int(await ctx.store.streams.abort(thread_id, a.stream_id, ctx.guard))
    else:  # the thread's replies, queued ones included
        aborted = await ctx.store.streams.abort_replies(thread_id, guard=ctx.guard)
    version = await ctx.store.threads.version(thread_id)
    return Outcome({"aborted": aborted}, version, [keys.thread_channel(thread_id)])


@mutation("messages.update", A.MessagesUpdate)
async def update_message(ctx: Context, a: A.MessagesUpdate) -> Outcome:
    """Replace a message's metadata (its text stays: an edit is a new version, not a rewrite)."""
    version, message = await ctx.store.messages.set_metadata(a.message_id, a.metadata, ctx.user_id, ctx.guard)
    return Outcome(message, version, [keys.thread_channel(message.thread_id)])


@mutation("messages.delete", A.MessagesDelete)
async def delete_messages(ctx: Context, a: A.MessagesDelete) -> Outcome:
    count, versions = await ctx.store.messages.delete(a.message_ids, ctx.user_id, ctx.guard)
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
        guard=ctx.guard,
    )
    return Outcome({"deleted": count}, version, [keys.thread_channel(a.thread_id)])


@mutation("snippets.add", A.SnippetsAdd)
async def add_snippet(ctx: Context, a: A.SnippetsAdd) -> Outcome:
    if a.message_id is not None:
        message = await ctx.store.messages.get(a.message_id, ctx.user_id)
        if message.thread_id != a.thread_id:
            raise BadRequest("messageId is not a message of this thread")
    edit = None
    if a.document is not None or a.operation is not None:
        if a.document is None or a.operation is None:
            raise BadRequest("an edit's snippet names both its `document` and its `operation`")
        edit = Edit(document=a.document, operation=a.operation, before=a.before, after=a.after, patch=a.patch,
                    doc_version=a.doc_version, by=f"user:{ctx.user_id}")
    elif any(v is not None for v in (a.before, a.after, a.patch, a.doc_version)):
        raise BadRequest("`before`, `after`, `patch` and `docVersion` belong to an edit: give its `document` "
                         "and `operation`")
    if edit is None and not a.content:
        raise BadRequest("a snippet has `content`")
    version, snippet = await ctx.store.snippets.add(
        a.thread_id, ctx.user_id, kind=a.kind, content=a.content, target=a.target, summary=a.summary,
        message_id=a.message_id, guard=ctx.guard, edit=edit)
    return Outcome({"snippetId": snippet.snippet_id}, version, [keys.thread_channel(a.thread_id)])


@mutation("snippets.delete", A.SnippetsDelete)
async def delete_snippet(ctx: Context, a: A.SnippetsDelete) -> Outcome:
    version, deleted = await ctx.store.snippets.delete(a.snippet_id, ctx.user_id, ctx.guard)
    thread_id = thread_of_snippet(a.snippet_id)
    return Outcome({"deleted": deleted}, version, [keys.thread_channel(thread_id)])


@mutation("canvas.edit", A.CanvasEdit)
async def canvas_edit(ctx: Context, a: A.CanvasEdit) -> Outcome:
    """Set or delete one element of a thread's canvas; the edit's snippet (before and after) is
    saved in the same step. With ``expectedVersion``: only over that version (else conflict)."""
    version, canvas, snippet = await ctx.store.canvases.edit(
        a.thread_id, a.canvas_id, a.operation, a.target, by=f"user:{ctx.user_id}", caller=ctx.user_id,
        value=a.value, kind=a.kind, position=a.position, expected_version=a.expected_version, summary=a.summary,
        guard=ctx.guard)
    return Outcome({"version": canvas.version, "snippetId": snippet.snippet_id}, version,
                   [keys.thread_channel(a.thread_id)])


@mutation("canvas.restore", A.CanvasRestore)
async def canvas_restore(ctx: Context, a: A.CanvasRestore) -> Outcome:
    """Put the element a canvas edit changed back as that edit found it (itself an edit)."""
    version, canvas, snippet = await ctx.store.canvases.restore(
        a.snippet_id, by=f"user:{ctx.user_id}", caller=ctx.user_id, expected_version=a.expected_version,
        summary=a.summary, guard=ctx.guard)
    return Outcome({"version": canvas.version, "snippetId": snippet.snippet_id}, version,
                   [keys.thread_channel(thread_of_snippet(a.snippet_id))])


# -- document RAG ----------------------------------------------------------------


def _content_of(a: A.RagAdd) -> bytes:
    if (a.content is None) == (a.content_base64 is None):
        raise BadRequest("give exactly one of `content` or `contentBase64`")
    if a.content is not None:
        return a.content.encode()
    try:
        return base64.b64decode(a.content_base64 or "", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest("`contentBase64` is not valid base64") from exc


async def add_document(ctx: Context, namespace: str, key: str, content: bytes, a: A.RagAdd) -> Outcome:
    """Check and store a document (WebSocket and HTTP); the index process does the rest."""
    namespace = namespace_for(ctx.identity, namespace, write=True)
    check_document(content, ctx.services.settings.rag_max_bytes, a.media_type, key)  # 413/400/415 now
    version, doc, skipped = await ctx.store.documents.add(
        namespace, key, content, title=a.title, media_type=a.media_type, metadata=a.metadata,
        chunk_size=a.chunk_size, chunk_overlap=a.chunk_overlap, added_by=ctx.user_id)
    return Outcome({"namespace": namespace, "key": key, "version": doc.version, "status": doc.status,
                    "skipped": skipped}, version, [keys.rag_channel(namespace)])


@mutation("rag.add", A.RagAdd)
async def rag_add(ctx: Context, a: A.RagAdd) -> Outcome:
    return await add_document(ctx, a.namespace, a.key, _content_of(a), a)


@mutation("rag.delete", A.RagRef)
async def rag_delete(ctx: Context, a: A.RagRef) -> Outcome:
    namespace = namespace_for(ctx.identity, a.namespace, write=True)
    version, deleted = await ctx.store.documents.delete(namespace, a.key)
    return Outcome({"deleted": deleted}, version, [keys.rag_channel(namespace)])


# -- the cross-thread store ---------------------------------------------------------------


@mutation("store.put", A.StorePut)
async def store_put(ctx: Context, a: A.StorePut) -> Outcome:
    """Write an item of a namespace the caller may write (with ``expectedVersion``: only over that
    version, 0 for a new one; conflict otherwise). Indexed items are found by ``store.search``."""
    namespace = namespace_for(ctx.identity, a.namespace, write=True)
    version, item = await ctx.store.items.put(
        namespace, a.key, a.value, text=a.text, index=a.index, by=f"user:{ctx.user_id}",
        expected_version=a.expected_version, record=in_namespace(ctx.guard, namespace))
    return Outcome({"namespace": namespace, "key": a.key, "version": item.version}, version,
                   [keys.item_channel(namespace)])


@mutation("store.delete", A.StoreDelete)
async def store_delete(ctx: Context, a: A.StoreDelete) -> Outcome:
    namespace = namespace_for(ctx.identity, a.namespace, write=True)
    version, deleted = await ctx.store.items.delete(
        namespace, a.key, expected_version=a.expected_version,
        record=in_namespace(ctx.guard, namespace))
    return Outcome({"deleted": deleted}, version, [keys.item_channel(namespace)])


# -- workflows ---------------------------------------------------------------------------


@mutation("workflows.start", A.WorkflowsStart)
async def start_workflow(ctx: Context, a: A.WorkflowsStart) -> Outcome:
    """Start a run of the app's workflow ``name`` for the caller. One run per ``key``; without
    one, per request (a resent request gets the run its first sending started)."""
    wf = workflow_named(ctx.services.settings.app_module, a.name)
    if not wf.public:
        raise Forbidden(f"workflow {a.name!r} is started by the server only")
    # a client's key is the same key as the Python API's; a request's own name is set apart from both
    key = a.key if a.key is not None else (f"request:{ctx.guard.digest}" if ctx.guard else None)
    # a client's run spends as its user: each agent step counts in the rate limits as a send would
    run_id, created = await ctx.services.workflows.start(wf, ctx.user_id, a.args, key=key, limited=True)
    version = await ctx.services.workflows.version(run_id)
    return Outcome({"runId": run_id, "created": created}, version, [keys.workflow_channel(run_id)])


async def _own_run(ctx: Context, run_id: str) -> None:
    await ctx.services.workflows.check_owner(run_id, ctx.owner_or_any)


@mutation("workflows.cancel", A.WorkflowRef)
async def cancel_workflow(ctx: Context, a: A.WorkflowRef) -> Outcome:
    await _own_run(ctx, a.run_id)
    canceled = await ctx.services.workflows.cancel(a.run_id, f"canceled by {ctx.user_id}")
    return Outcome({"canceled": canceled}, await ctx.services.workflows.version(a.run_id),
                   [keys.workflow_channel(a.run_id)])


@mutation("workflows.sendEvent", A.WorkflowsEvent)
async def send_workflow_event(ctx: Context, a: A.WorkflowsEvent) -> Outcome:
    """Give a run an event (e.g. a person's approval): the step waiting for ``name`` gets
    ``payload``, or the next one to wait for it."""
    await _own_run(ctx, a.run_id)
    step_id = await ctx.services.workflows.send_event(a.run_id, a.name, a.payload)
    return Outcome({"delivered": bool(step_id), "stepId": step_id or None},
                   await ctx.services.workflows.version(a.run_id), [keys.workflow_channel(a.run_id)])


# -- schedules ------------------------------------------------------------------------------


def _check_action(ctx: Context, action: Action) -> None:
    """A user's schedule acts as they could: a public workflow of the app, an agent of it (the thread
    is checked below, with the user's role in it)."""
    if isinstance(action, StartWorkflow):
        if not workflow_named(ctx.services.settings.app_module, action.name).public:
            raise Forbidden(f"workflow {action.name!r} is started by the server only")
    else:
        agent_named(ctx.services.settings.app_module, action.agent_name)


@mutation("schedules.create", A.SchedulesCreate)
async def create_schedule(ctx: Context, a: A.SchedulesCreate) -> Outcome:
    """A schedule of the caller's: ``timing`` (a cron expression in a time zone, or every N seconds)
    and ``action`` (a prompt sent to an agent in one of their threads, or a workflow started)."""
    check_timing(a.timing)
    _check_action(ctx, a.action)
    if isinstance(a.action, SendPrompt):
        await ctx.store.threads.get(a.action.thread_id, ctx.user_id, need="writer")
    version, schedule, _ = await ctx.services.runtime.schedules.create(
        ctx.user_id, a.name, a.timing, a.action, schedule_id=schedule_id_for(ctx.guard.digest) if ctx.guard else None)
    return Outcome(schedule, version, [keys.user_schedules_channel(ctx.user_id)])


async def _change_schedule(ctx: Context, a: A.ScheduleRef, op: str) -> Outcome:
    version = await ctx.services.runtime.schedules.change(a.schedule_id, op, ctx.user_id)
    value = {"deleted": True} if op == "delete" else await ctx.services.runtime.schedules.get(a.schedule_id)
    return Outcome(value, version, [keys.user_schedules_channel(ctx.user_id)])


@mutation("schedules.pause", A.ScheduleRef)
async def pause_schedule(ctx: Context, a: A.ScheduleRef) -> Outcome:
    return await _change_schedule(ctx, a, "pause")


@mutation("schedules.resume", A.ScheduleRef)
async def resume_schedule(ctx: Context, a: A.ScheduleRef) -> Outcome:
    """It fires next at its next slot after now (those missed while paused are not made up)."""
    return await _change_schedule(ctx, a, "resume")


@mutation("schedules.delete", A.ScheduleRef)
async def delete_schedule(ctx: Context, a: A.ScheduleRef) -> Outcome:
    return await _change_schedule(ctx, a, "delete")


# -- working memory -------------------------------------------------------------------------


@mutation("memory.setWorking", A.WorkingMemorySet)
async def set_working_memory(ctx: Context, a: A.WorkingMemorySet) -> Outcome:
    """The caller writes their working memory (or a thread's they may write) whole; with
    ``expectedVersion``, only if no one (an agent) changed it since they read it (else conflict)."""
    if a.thread_id is not None:
        await ctx.store.threads.get(a.thread_id, ctx.user_id, need="writer")
    version = await ctx.store.working_memory.write(a.text, by=f"user:{ctx.user_id}", op="set", user_id=ctx.user_id,
                                                   thread_id=a.thread_id, expected_version=a.expected_version)
    return Outcome({"version": version}, version, [working_memory_channel(ctx.user_id, a.thread_id)])
