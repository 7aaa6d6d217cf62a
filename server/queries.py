"""Queries: the live reads a client may subscribe to, by name, shared by WebSocket and HTTP."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from threadline.server import args as A
from threadline.server.context import Context
from threadline.shared import keys
from threadline.shared.agents import ContextOptions, agent_named
from threadline.shared.agents.request import Caller, RunContext, instructions_for
from threadline.shared.documents.store import namespace_for
from threadline.shared.errors import Forbidden, from_validation
from threadline.shared.generation.context import fetch_context_messages, to_chat_messages
from threadline.shared.rag.items import search_items
from threadline.shared.rag.search import search_documents
from threadline.shared.records import Message
from threadline.shared.threads import StreamInfo
from threadline.shared.threads.working_memory import channel as working_memory_channel
from threadline.shared.usage.ledger import check_period
from threadline.shared.usage.limits import LimitStatus, Who

Runner = Callable[[Context, Any], Awaitable[tuple[int, Any]]]
Channels = Callable[[Context, Any], list[str]]
Cursors = dict[str, int]


class StreamedPage(msgspec.Struct, rename="camel", kw_only=True):
    """A page of messages with the thread's streams (their text as of each stream's seq)."""

    page: list[Message]
    continue_cursor: str
    is_done: bool
    streams: list[StreamInfo]


def _no_streams(args: Any) -> str | None:
    return None


def _shared(args: Any) -> tuple[Any, Cursors]:
    return args, {}


@dataclass(frozen=True, slots=True)
class Query:
    """A named read: its args, the change channels it depends on, and how to run it.

    A query whose result carries streams (a ``StreamedPage``) names the thread
    they belong to with ``follows``: its subscribers then get those streams'
    deltas too. ``split`` separates what a subscriber sends for itself alone
    (the stream cursors to resume from) from the args identical subscriptions share.
    """

    name: str
    args_type: type
    channels: Channels
    run: Runner
    follows: Callable[[Any], str | None] = _no_streams
    split: Callable[[Any], tuple[Any, Cursors]] = _shared


QUERIES: dict[str, Query] = {}


def query(name: str, args_type: type, channels: Channels, *,
          follows: Callable[[Any], str | None] = _no_streams,
          split: Callable[[Any], tuple[Any, Cursors]] = _shared) -> Callable[[Runner], Runner]:
    def register(fn: Runner) -> Runner:
        QUERIES[name] = Query(name, args_type, channels, fn, follows, split)
        return fn

    return register


def _thread_channel(ctx: Context, a: Any) -> list[str]:
    return [keys.thread_channel(a.thread_id)]


def _user_channel(ctx: Context, a: Any) -> list[str]:
    return [keys.user_channel(ctx.user_id)]


@query("threads.list", A.ThreadsList, _user_channel)
async def list_threads(ctx: Context, a: A.ThreadsList) -> tuple[int, Any]:
    opts = a.pagination_opts
    return await ctx.store.threads.list(ctx.user_id, num_items=opts.num_items, cursor=opts.cursor)


@query("threads.get", A.ThreadRef, _thread_channel)
async def get_thread(ctx: Context, a: A.ThreadRef) -> tuple[int, Any]:
    return await ctx.store.threads.get_versioned(a.thread_id, ctx.user_id)


def _streams_thread(a: A.MessagesList) -> str | None:
    return a.thread_id if a.streams else None


def _own_cursors(a: A.MessagesList) -> tuple[A.MessagesList, Cursors]:
    if not a.stream_cursors:
        return a, {}
    return msgspec.structs.replace(a, stream_cursors={}), dict(a.stream_cursors)


@query("messages.list", A.MessagesList, _thread_channel, follows=_streams_thread, split=_own_cursors)
async def list_messages(ctx: Context, a: A.MessagesList) -> tuple[int, Any]:
    return await _messages(ctx, a, ctx.user_id)


async def _messages(ctx: Context, a: A.MessagesList, user_id: str | None) -> tuple[int, Any]:
    opts = a.pagination_opts
    streams: list[StreamInfo] | None = [] if a.streams else None
    version, page = await ctx.store.messages.list(
        a.thread_id,
        user_id,
        num_items=opts.num_items,
        cursor=opts.cursor,
        exclude_tool_messages=a.exclude_tool_messages,
        statuses=a.statuses,
        streams=streams,
    )
    if streams is None:
        return version, page
    return version, StreamedPage(page=page.page, continue_cursor=page.continue_cursor,
                                 is_done=page.is_done, streams=streams)


@query("messages.branches", A.ThreadRef, _thread_channel)
async def message_branches(ctx: Context, a: A.ThreadRef) -> tuple[int, Any]:
    """Where edited messages have versions on the active branch: each fork's versions (their turn's
    order and first message), oldest first, and which is shown. Live: edits and switches change it."""
    version, forks = await ctx.store.messages.branches(a.thread_id, ctx.owner_or_any)
    return version, {"forks": forks}


@query("snippets.list", A.SnippetsList, _thread_channel)
async def list_snippets(ctx: Context, a: A.SnippetsList) -> tuple[int, Any]:
    opts = a.pagination_opts
    return await ctx.store.snippets.list(a.thread_id, ctx.user_id, num_items=opts.num_items, cursor=opts.cursor,
                                         document=a.document)


@query("canvas.get", A.CanvasGet, _thread_channel)
async def canvas_get(ctx: Context, a: A.CanvasGet) -> tuple[int, Any]:
    """A canvas of the thread (version 0 and no elements before its first edit). Live."""
    return await ctx.store.canvases.get(a.thread_id, a.canvas_id, ctx.user_id)


@query("context.fetch", A.ContextFetch, _thread_channel)
async def fetch_context(ctx: Context, a: A.ContextFetch) -> tuple[int, Any]:
    """The context an agent would get: for ``targetMessageId`` (only earlier messages
    count), or for a new ``prompt``; ``contextOptions`` overrides the agent's."""
    version, _ = await ctx.store.threads.get_versioned(a.thread_id, ctx.user_id)
    agent = agent_named(ctx.services.settings.app_module, a.agent_name)
    if a.context_options is not None:
        try:
            options = msgspec.convert(a.context_options, ContextOptions)
        except msgspec.ValidationError as exc:
            raise from_validation(exc) from exc
        agent = dataclasses.replace(agent, context_options=options)
    if a.target_message_id is not None:
        prompt = await ctx.store.messages.get(a.target_message_id, ctx.user_id)
    else:
        prompt = Message(message_id="", thread_id=a.thread_id, user_id=ctx.user_id, order=1 << 32,
                         text=a.prompt or "")
    messages = await fetch_context_messages(ctx.store, a.thread_id, prompt, agent.context_options,
                                            ctx.services.memory)
    if not isinstance(agent.instructions, str):  # built for this caller, as a send without `context` would
        caller = Caller(ctx.user_id, ctx.identity.teams, ctx.identity.admin, ctx.identity.claims)
        agent = dataclasses.replace(agent, instructions=await instructions_for(agent, RunContext(caller, a.thread_id,
                                                                                                  agent)))
    return version, {"agentName": agent.name, "messages": messages, "chat": to_chat_messages(agent, messages)}


# -- document RAG ----------------------------------------------------------------


def _rag_channel(ctx: Context, a: A.RagList) -> list[str]:
    return [keys.rag_channel(namespace_for(ctx.identity, a.namespace, write=False))]


@query("rag.documents", A.RagList, _rag_channel)
async def rag_documents(ctx: Context, a: A.RagList) -> tuple[int, Any]:
    """A namespace's documents with their status (pending, ready, failed), most recently changed first."""
    namespace = namespace_for(ctx.identity, a.namespace, write=False)
    opts = a.pagination_opts
    return await ctx.store.documents.page(namespace, num_items=opts.num_items, cursor=opts.cursor)


@query("rag.document", A.RagRef, _rag_channel)
async def rag_document(ctx: Context, a: A.RagRef) -> tuple[int, Any]:
    namespace = namespace_for(ctx.identity, a.namespace, write=False)
    return await ctx.store.documents.version(namespace), await ctx.store.documents.get(namespace, a.key)


def _search_channels(ctx: Context, a: A.RagSearch) -> list[str]:
    return [keys.rag_channel(namespace_for(ctx.identity, n, write=False)) for n in a.namespaces]


@query("rag.search", A.RagSearch, _search_channels)
async def rag_search(ctx: Context, a: A.RagSearch) -> tuple[int, Any]:
    """Hybrid search over the namespaces' documents: chunks with their neighbours and documents.
    Live: it runs again when a document of those namespaces changes."""
    namespaces = [namespace_for(ctx.identity, n, write=False) for n in a.namespaces]
    versions = [await ctx.store.documents.version(n) for n in namespaces]
    results = await search_documents(
        ctx.store, ctx.services.memory, namespaces, a.query, limit=a.limit, metadata=a.metadata,
        before=a.chunk_context.before, after=a.chunk_context.after, text_search=a.text_search,
        vector_search=a.vector_search, bill_to=ctx.user_id)
    return sum(versions), {"results": results}


# -- the cross-thread store ----------------------------------------------------------------


def _item_channel(ctx: Context, a: A.StoreList | A.StoreRef) -> list[str]:
    return [keys.item_channel(namespace_for(ctx.identity, a.namespace, write=False))]


@query("store.list", A.StoreList, _item_channel)
async def store_list(ctx: Context, a: A.StoreList) -> tuple[int, Any]:
    """A namespace's items whose key starts with ``prefix``, in key order. Live."""
    namespace = namespace_for(ctx.identity, a.namespace, write=False)
    opts = a.pagination_opts
    return await ctx.store.items.page(namespace, prefix=a.prefix, num_items=opts.num_items, cursor=opts.cursor)


@query("store.get", A.StoreRef, _item_channel)
async def store_get(ctx: Context, a: A.StoreRef) -> tuple[int, Any]:
    """One item (null when there is none). Live."""
    namespace = namespace_for(ctx.identity, a.namespace, write=False)
    version = await ctx.store.items.version(namespace)
    return version, await ctx.store.items.find(namespace, a.key)


def _store_search_channels(ctx: Context, a: A.StoreSearch) -> list[str]:
    return [keys.item_channel(namespace_for(ctx.identity, n, write=False)) for n in a.namespaces]


@query("store.search", A.StoreSearch, _store_search_channels)
async def store_search(ctx: Context, a: A.StoreSearch) -> tuple[int, Any]:
    """The indexed items of the namespaces that best match ``query`` (hybrid search), best first.
    Live: it runs again when an item of those namespaces changes."""
    namespaces = [namespace_for(ctx.identity, n, write=False) for n in a.namespaces]
    versions = [await ctx.store.items.version(n) for n in namespaces]
    results = await search_items(ctx.store, ctx.services.memory, namespaces, a.query, limit=a.limit,
                                 text_search=a.text_search, vector_search=a.vector_search, bill_to=ctx.user_id)
    return sum(versions), {"results": results}


@query("presence.list", A.ThreadRef, lambda ctx, a: [keys.presence_channel(a.thread_id)])
async def presence_list(ctx: Context, a: A.ThreadRef) -> tuple[int, Any]:
    """Who views the thread and who is typing (presence.set). Live: someone comes, leaves, starts or
    stops typing; a client stops showing "typing" after ``typingForMs``."""
    await ctx.store.threads.get(a.thread_id, ctx.owner_or_any)
    return await ctx.store.presence.list(a.thread_id)


# -- usage -----------------------------------------------------------------------------


@query("usage.get", A.UsageGet, lambda ctx, a: [keys.usage_channel(ctx.user_id)])
async def usage_get(ctx: Context, a: A.UsageGet) -> tuple[int, Any]:
    """The caller's usage in a billing period (the current one by default): tokens, calls and cost,
    as a whole and by model, agent and kind. Live: it changes with every model call of theirs."""
    return await ctx.services.usage.summary(ctx.user_id, check_period(a.period) if a.period else None)


# -- rate limits -----------------------------------------------------------------------


@query("rateLimit.status", A.RateLimitStatus, lambda ctx, a: [keys.rate_limit_channel(ctx.user_id)])
async def rate_limit_status(ctx: Context, a: A.RateLimitStatus) -> tuple[int, Any]:
    """May the caller send now (to this agent), and if not, when: every rule that counts their
    messages and tokens with what is left. Live: it changes when something of theirs is taken; a
    client counts ``retryAfterMs`` down itself (from ``at``)."""
    agent = agent_named(ctx.services.settings.app_module, a.agent_name).name
    limits = ctx.services.limiter
    if limits is None:
        return 0, LimitStatus(can_send=True, retry_after_ms=0, at=0, rules=[])
    status = await limits.status(Who(ctx.user_id, agent, ctx.identity.teams))
    return status.at, status


# -- workflows -------------------------------------------------------------------------


@query("workflows.get", A.WorkflowRef, lambda ctx, a: [keys.workflow_channel(a.run_id)])
async def workflow_get(ctx: Context, a: A.WorkflowRef) -> tuple[int, Any]:
    """A run of the caller (admins: anyone's) with its status, result or error, and its steps (name,
    status, attempts, result or error, times). Live: it changes with every step."""
    view = await ctx.services.workflows.view(a.run_id, ctx.owner_or_any)
    return view.version, view


@query("workflows.list", A.WorkflowsList, lambda ctx, a: [keys.user_workflows_channel(ctx.user_id)])
async def workflow_list(ctx: Context, a: A.WorkflowsList) -> tuple[int, Any]:
    """The caller's runs, newest first (without their steps). Live: any of them changing."""
    opts = a.pagination_opts
    return await ctx.services.workflows.runs(ctx.user_id, num_items=opts.num_items, cursor=opts.cursor)


@query("schedules.list", A.SchedulesList, lambda ctx, a: [keys.user_schedules_channel(ctx.user_id)])
async def schedule_list(ctx: Context, a: A.SchedulesList) -> tuple[int, Any]:
    """The caller's schedules, oldest first, each with its next firing and how often it fired. Live."""
    version, schedules = await ctx.services.runtime.schedules.of_user(ctx.user_id)
    return version, {"schedules": schedules}


@query("memory.working", A.WorkingMemoryGet,
       lambda ctx, a: [working_memory_channel(ctx.user_id, a.thread_id)])
async def working_memory(ctx: Context, a: A.WorkingMemoryGet) -> tuple[int, Any]:
    """The caller's working memory (or a thread's they can read), with its latest revisions. Live."""
    if a.thread_id is not None:
        await ctx.store.threads.get(a.thread_id, ctx.user_id)
    view = await ctx.store.working_memory.read(user_id=ctx.user_id, thread_id=a.thread_id, history=a.history)
    return view.version, view


# -- the playground: any user's data, for admin tokens --------------------------------------


def _admin(ctx: Context) -> None:
    if not ctx.identity.admin:
        raise Forbidden("admin queries need a token with the admin claim")


@query("admin.threads", A.AdminThreads, lambda ctx, a: [keys.user_channel(a.user_id)])
async def admin_threads(ctx: Context, a: A.AdminThreads) -> tuple[int, Any]:
    """Any user's threads (as threads.list is for the caller)."""
    _admin(ctx)
    opts = a.pagination_opts
    return await ctx.store.threads.list(a.user_id, num_items=opts.num_items, cursor=opts.cursor)


@query("admin.messages", A.MessagesList, _thread_channel, follows=_streams_thread, split=_own_cursors)
async def admin_messages(ctx: Context, a: A.MessagesList) -> tuple[int, Any]:
    """Any thread's messages, with its streams' deltas (as messages.list is for the caller's)."""
    _admin(ctx)
    return await _messages(ctx, a, None)


@query("admin.workflows", A.WorkflowsList, lambda ctx, a: [keys.WORKFLOW_RUNS_CHANNEL])
async def admin_workflows(ctx: Context, a: A.WorkflowsList) -> tuple[int, Any]:
    """Every user's workflow runs, newest first; live: a run starting, getting its place or ending."""
    _admin(ctx)
    opts = a.pagination_opts
    return await ctx.services.workflows.runs(None, num_items=opts.num_items, cursor=opts.cursor)
