"""The HTTP API: the same operations as the WebSocket protocol, for servers and curl."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from threadline.server import frames
from threadline.server.auth import context_of
from threadline.server.context import Context, Services
from threadline.server.mutate import error_of, parse_args, run_mutation
from threadline.server.mutations import Outcome, add_document
from threadline.server.queries import QUERIES
from threadline.server.wakeup import thread_wakeup
from threadline.shared import jobs, keys, metrics
from threadline.shared.clock import now_ms
from threadline.shared.documents.parsing import too_large
from threadline.shared.errors import (
    BadRequest,
    ChatError,
    Forbidden,
    Internal,
    NotFound,
    TooLarge,
    from_validation,
)
from threadline.shared.indexing.ops import waiting as index_ops_waiting
from threadline.shared.json_depth import check_depth
from threadline.shared.storage.pagination import MAX_PAGE, parse_digits
from threadline.shared.streams.store import thread_of_stream

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20
WORKER_STALE_MS = 15_000  # three missed heartbeats (workers.worker.HEARTBEAT_S)
_encode = msgspec.json.Encoder().encode


def json_response(value: Any, status: int = 200) -> Response:
    return Response(_encode(value), status_code=status, media_type="application/json")


def error_response(exc: ChatError) -> Response:
    headers = {}
    if exc.retry_after_ms is not None:
        headers["Retry-After"] = str(max(1, -(-exc.retry_after_ms // 1000)))
    return Response(_encode(exc.to_dict()), exc.status, headers, media_type="application/json")


async def _body(request: Request) -> dict[str, Any]:
    raw = await _raw_body(request, MAX_BODY, f"request body over {MAX_BODY} bytes")
    if not raw.strip():
        return {}
    check_depth(raw)
    try:
        body = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    return body


async def _raw_body(request: Request, limit: int, too_large: str) -> bytes:
    """The body, read up to ``limit`` bytes (TooLarge, with the message ``too_large``, past it)."""
    length = request.headers.get("content-length")
    if length is not None and (not (length.isascii() and length.isdigit()) or int(length) > limit):
        raise TooLarge(too_large)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(too_large)
        chunks.append(chunk)
    return b"".join(chunks)


def _convert(data: dict[str, Any], args_type: type) -> Any:
    try:
        return msgspec.convert(data, args_type)
    except msgspec.ValidationError as exc:
        raise from_validation(exc) from exc


def _query_params(request: Request) -> dict[str, Any]:
    q = request.query_params
    out: dict[str, Any] = {}
    opts: dict[str, Any] = {}
    if "numItems" in q:
        opts["numItems"] = parse_digits(q["numItems"], "numItems", MAX_PAGE)
    if "cursor" in q:
        opts["cursor"] = q["cursor"]
    if opts:
        out["paginationOpts"] = opts
    if "excludeToolMessages" in q:
        out["excludeToolMessages"] = _flag(q["excludeToolMessages"], "excludeToolMessages")
    if "statuses" in q:
        out["statuses"] = [s for s in q["statuses"].split(",") if s]
    if "streams" in q:  # the thread's streams (ids for GET /api/streams/{id}), as on the WebSocket
        out["streams"] = _flag(q["streams"], "streams")
    if "document" in q:  # snippets.list: a document's edits
        out["document"] = q["document"]
    if "prefix" in q:  # store.list
        out["prefix"] = q["prefix"]
    if "expectedVersion" in q:  # store.delete
        out["expectedVersion"] = parse_digits(q["expectedVersion"], "expectedVersion", 1 << 53)
    return out


def _flag(value: str, name: str) -> bool:
    lowered = value.lower()
    if lowered not in ("1", "true", "yes", "0", "false", "no"):
        raise BadRequest(f"`{name}` must be true or false")
    return lowered in ("1", "true", "yes")


class Endpoints:
    """Route handlers bound to this process's services."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def _context(self, request: Request) -> Context:
        return await context_of(self.services, request)

    async def _query(self, request: Request, name: str, data: dict[str, Any]) -> Response:
        ctx = await self._context(request)
        q = QUERIES[name]
        _, value = await q.run(ctx, _convert(data, q.args_type))
        return json_response(value)

    async def _mutate(self, request: Request, name: str, data: Any, status: int = 200,
                      run: Callable[[Context], Awaitable[Outcome]] | None = None, ctx: Context | None = None) -> Response:
        """``data``: the body's JSON, or the arguments parsed already (server.mutate.run_mutation)."""
        ctx = ctx or await self._context(request)
        key = request.headers.get("idempotency-key")
        if key is not None and not 1 <= len(key) <= 128:
            raise BadRequest("Idempotency-Key must have 1-128 characters")
        stored = await run_mutation(ctx, name, data, ("http", key) if key is not None else None, run)
        if not stored.ok:
            raise error_of(stored)
        return Response(bytes(stored.value), status, media_type="application/json")

    async def threads(self, request: Request) -> Response:
        if request.method == "POST":
            return await self._mutate(request, "threads.create", await _body(request), 201)
        return await self._query(request, "threads.list", _query_params(request))

    async def thread(self, request: Request) -> Response:
        ref = {"threadId": request.path_params["thread_id"]}
        if request.method == "GET":
            return await self._query(request, "threads.get", ref)
        if request.method == "DELETE":
            return await self._mutate(request, "threads.delete", ref)
        return await self._mutate(request, "threads.update", {**await _body(request), **ref})

    async def messages(self, request: Request) -> Response:
        ref = {"threadId": request.path_params["thread_id"]}
        if request.method == "POST":
            return await self._mutate(request, "messages.send", {**await _body(request), **ref}, 201)
        return await self._query(request, "messages.list", {**_query_params(request), **ref})

    async def message(self, request: Request) -> Response:
        """PATCH {metadata}: replace its metadata (messages.update); DELETE: delete it (messages.delete)."""
        message_id = request.path_params["message_id"]
        if request.method == "PATCH":
            return await self._mutate(request, "messages.update", {**await _body(request), "messageId": message_id})
        return await self._mutate(request, "messages.delete", {"messageIds": [message_id]})

    async def delete_messages(self, request: Request) -> Response:
        """POST {messageIds}: delete these messages (messages.delete)."""
        return await self._mutate(request, "messages.delete", await _body(request))

    async def delete_range(self, request: Request) -> Response:
        """POST {startOrder, endOrder, startStepOrder?, endStepOrder?} (messages.deleteRange)."""
        ref = {"threadId": request.path_params["thread_id"]}
        return await self._mutate(request, "messages.deleteRange", {**await _body(request), **ref})

    async def regenerate(self, request: Request) -> Response:
        """POST {agentName?, attempt?, context?, options?}: answer a user message again (messages.regenerate)."""
        ref = {"messageId": request.path_params["message_id"]}
        return await self._mutate(request, "messages.regenerate", {**await _body(request), **ref}, 202)

    async def edit(self, request: Request) -> Response:
        """POST {prompt | message, agentName?, generate?, ...}: a new version of a user message (messages.edit)."""
        ref = {"messageId": request.path_params["message_id"]}
        return await self._mutate(request, "messages.edit", {**await _body(request), **ref}, 201)

    async def branches(self, request: Request) -> Response:
        """GET: the forks of the active branch (messages.branches); POST {order}: show that branch
        (messages.switchBranch)."""
        ref = {"threadId": request.path_params["thread_id"]}
        if request.method == "POST":
            return await self._mutate(request, "messages.switchBranch", {**await _body(request), **ref})
        return await self._query(request, "messages.branches", ref)

    async def snippets(self, request: Request) -> Response:
        """GET: the thread's snippets (snippets.list); POST: add one (snippets.add)."""
        ref = {"threadId": request.path_params["thread_id"]}
        if request.method == "POST":
            return await self._mutate(request, "snippets.add", {**await _body(request), **ref}, 201)
        return await self._query(request, "snippets.list", {**_query_params(request), **ref})

    async def snippet(self, request: Request) -> Response:
        return await self._mutate(request, "snippets.delete", {"snippetId": request.path_params["snippet_id"]})

    async def canvas(self, request: Request) -> Response:
        return await self._query(request, "canvas.get", {"threadId": request.path_params["thread_id"],
                                                         "canvasId": request.path_params["canvas_id"]})

    async def canvas_edits(self, request: Request) -> Response:
        ref = {"threadId": request.path_params["thread_id"], "canvasId": request.path_params["canvas_id"]}
        return await self._mutate(request, "canvas.edit", {**await _body(request), **ref})

    async def canvas_restore(self, request: Request) -> Response:
        ref = {"snippetId": request.path_params["snippet_id"]}
        return await self._mutate(request, "canvas.restore", {**await _body(request), **ref})

    async def documents(self, request: Request) -> Response:
        """GET: the namespace's documents. POST: add one, as JSON (the rag.add arguments) or as the
        raw body (PDF, HTML, Markdown, text) with ``?key=`` and optional ``title``, ``chunkSize``,
        ``chunkOverlap``; the type is read from the bytes."""
        namespace = request.path_params["namespace"]
        if request.method == "GET":
            return await self._query(request, "rag.documents", {**_query_params(request), "namespace": namespace})
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype in ("application/json", ""):
            return await self._mutate(request, "rag.add", {**await _body(request), "namespace": namespace}, 202)
        ctx = await self._context(request)  # who asks, before reading a byte of the upload
        q = request.query_params
        fields: dict[str, Any] = {"namespace": namespace, "key": q.get("key", ""), "title": q.get("title", ""),
                                  "mediaType": ctype, "content": ""}
        for name in ("chunkSize", "chunkOverlap"):
            if name in q:
                fields[name] = parse_digits(q[name], name, 20_000)
        args = parse_args("rag.add", fields)
        limit = self.services.settings.rag_max_bytes
        content = await _raw_body(request, limit, too_large(limit))
        return await self._mutate(request, "rag.add", args, 202, ctx=ctx,
                                  run=lambda c: add_document(c, namespace, args.key, content, args))

    async def document(self, request: Request) -> Response:
        ref = {"namespace": request.path_params["namespace"], "key": request.path_params["key"]}
        if request.method == "DELETE":
            return await self._mutate(request, "rag.delete", ref)
        return await self._query(request, "rag.document", ref)

    async def store_items(self, request: Request) -> Response:
        """GET: a namespace's items (store.list, ``?prefix=``)."""
        return await self._query(request, "store.list",
                                 {**_query_params(request), "namespace": request.path_params["namespace"]})

    async def store_item(self, request: Request) -> Response:
        """GET: one item (store.get); PUT: write it (store.put: ``value``, ``text``, ``index``,
        ``expectedVersion``); DELETE: delete it (store.delete, ``?expectedVersion=``)."""
        ref = {"namespace": request.path_params["namespace"], "key": request.path_params["key"]}
        if request.method == "PUT":
            return await self._mutate(request, "store.put", {**await _body(request), **ref})
        if request.method == "DELETE":
            return await self._mutate(request, "store.delete", {**_query_params(request), **ref})
        return await self._query(request, "store.get", ref)

    async def store_search(self, request: Request) -> Response:
        return await self._query(request, "store.search", await _body(request))

    async def workflows(self, request: Request) -> Response:
        """POST: start a run ({name, args, key}); GET: the caller's runs."""
        if request.method == "POST":
            return await self._mutate(request, "workflows.start", await _body(request), 201)
        return await self._query(request, "workflows.list", _query_params(request))

    async def workflow(self, request: Request) -> Response:
        return await self._query(request, "workflows.get", {"runId": request.path_params["run_id"]})

    async def workflow_cancel(self, request: Request) -> Response:
        return await self._mutate(request, "workflows.cancel", {"runId": request.path_params["run_id"]})

    async def workflow_event(self, request: Request) -> Response:
        """POST {name, payload}: an event for the run."""
        return await self._mutate(request, "workflows.sendEvent",
                                  {**await _body(request), "runId": request.path_params["run_id"]})

    async def schedules(self, request: Request) -> Response:
        """POST: a schedule ({name, timing, action}); GET: the caller's schedules."""
        if request.method == "POST":
            return await self._mutate(request, "schedules.create", await _body(request), 201)
        return await self._query(request, "schedules.list", {})

    async def schedule(self, request: Request) -> Response:
        """DELETE: the schedule; POST .../pause and .../resume."""
        ref = {"scheduleId": request.path_params["schedule_id"]}
        if request.method == "DELETE":
            return await self._mutate(request, "schedules.delete", ref)
        return await self._mutate(request, f"schedules.{request.url.path.rsplit('/', 1)[1]}", ref)

    async def working_memory(self, request: Request) -> Response:
        """GET: the caller's working memory (``?threadId=``: a thread's); PUT {text, expectedVersion?, threadId?}."""
        if request.method == "PUT":
            return await self._mutate(request, "memory.setWorking", await _body(request))
        args: dict[str, Any] = {k: v for k, v in request.query_params.items() if k == "threadId"}
        if "history" in request.query_params:
            args["history"] = parse_digits(request.query_params["history"], "history", 50)
        return await self._query(request, "memory.working", args)

    async def rag_search(self, request: Request) -> Response:
        return await self._query(request, "rag.search", await _body(request))

    async def stats(self, request: Request) -> Response:
        """Live counters of this process (admin tokens only)."""
        ctx = await self._context(request)
        if not ctx.identity.admin:
            raise Forbidden("stats need an admin token")
        s = self.services
        return json_response({
            "pid": os.getpid(),
            "sessions": len(s.sessions),
            "liveQueries": len(s.live),
            "queryRuns": s.live.runs,
            "channels": len(s.listener.channels),
            "listenerReconnects": s.listener.reconnects,
        })

    async def context(self, request: Request) -> Response:
        """POST {agentName?, prompt?, targetMessageId?, contextOptions?}: the context it would get."""
        return await self._query(request, "context.fetch",
                                 {**await _body(request), "threadId": request.path_params["thread_id"]})

    async def presence(self, request: Request) -> Response:
        """GET: who views the thread and who is typing (presence.list); POST {typing?, leave?}: the
        caller is there (presence.set; say it again within 30 s to stay)."""
        ref = {"threadId": request.path_params["thread_id"]}
        if request.method == "POST":
            return await self._mutate(request, "presence.set", {**await _body(request), **ref})
        return await self._query(request, "presence.list", ref)

    async def members(self, request: Request) -> Response:
        """POST {userId, role?}: the owner lets someone into the thread (threads.members.add)."""
        return await self._mutate(request, "threads.members.add",
                                  {**await _body(request), "threadId": request.path_params["thread_id"]})

    async def member(self, request: Request) -> Response:
        """DELETE: the owner takes a member out, or a member leaves (threads.members.remove)."""
        return await self._mutate(request, "threads.members.remove", {
            "threadId": request.path_params["thread_id"], "userId": request.path_params["user_id"]})

    async def takeover(self, request: Request) -> Response:
        """POST {agentName, metadata?}: a person answers in the thread (threads.takeover)."""
        return await self._mutate(request, "threads.takeover",
                                  {**await _body(request), "threadId": request.path_params["thread_id"]})

    async def release(self, request: Request) -> Response:
        return await self._mutate(request, "threads.release", {"threadId": request.path_params["thread_id"]})

    async def abort(self, request: Request) -> Response:
        return await self._mutate(request, "streams.abort", {"threadId": request.path_params["thread_id"]})

    async def approval(self, request: Request) -> Response:
        """POST {approved, reason?}: a decision on a tool call waiting for approval (tools.approve)."""
        ref = {"threadId": request.path_params["thread_id"], "approvalId": request.path_params["approval_id"]}
        return await self._mutate(request, "tools.approve", {**await _body(request), **ref})

    async def stream_events(self, request: Request) -> Response:
        """A stream's deltas as Server-Sent Events (``id:`` = seq; honours Last-Event-ID)."""
        ctx = await self._context(request)
        stream_id = request.path_params["stream_id"]
        thread_id = thread_of_stream(stream_id)
        await ctx.store.threads.get(thread_id, ctx.user_id)
        if await ctx.store.streams.get(stream_id) is None:
            raise NotFound(f"stream {stream_id} not found")
        last = parse_digits(request.headers.get("last-event-id", "0"), "Last-Event-ID")
        return StreamingResponse(sse_deltas(ctx, thread_id, stream_id, last, request),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def readyz(self, request: Request) -> Response:
        """200 when Redis answers, a generation worker heartbeated lately and the index is alive."""
        now = now_ms()
        try:
            async with self.services.redis.pipeline(transaction=False) as pipe:
                pipe.zcount(keys.GENERATION_WORKERS, now - WORKER_STALE_MS, "+inf")
                pipe.execute_command("EXISTS", keys.VECTOR_ALIVE)  # (a cluster pipeline queues no exists())
                workers, index = await pipe.execute()
        except Exception as exc:
            log.warning("readiness: Redis unreachable: %s", exc)
            return json_response({"ok": False, "redis": False, "generationWorkers": 0, "index": False}, 503)
        ready = workers > 0 and bool(index)
        return json_response({"ok": ready, "redis": True, "generationWorkers": workers, "index": bool(index)},
                             200 if ready else 503)

    async def metrics(self, request: Request) -> Response:
        """Prometheus text format: this process's metrics, plus queue depths read from Redis now."""
        s = self.services
        metrics.connections.set(len(s.sessions))
        metrics.subscriptions.set(sum(len(session.subs) for session in list(s.sessions)))
        metrics.live_queries.set(len(s.live))
        try:
            generation = await s.runtime.rq.llen(jobs.queue_key(jobs.GENERATION))  # RQ's own Redis
            ops = await index_ops_waiting(s.redis)
            metrics.queue_depth.labels(jobs.GENERATION).set(generation)
            metrics.queue_depth.labels("index").set(ops)
            metrics.index_lag.set(ops)
        except Exception as exc:  # the process's own metrics still answer
            log.warning("metrics: Redis unreachable: %s", exc)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    async def healthz(self, request: Request) -> Response:
        try:
            await self.services.redis.ping()
        except Exception as exc:
            log.warning("health: Redis unreachable: %s", exc)
            return json_response({"ok": False, "redis": "unreachable"}, 503)
        return json_response({"ok": True})


async def sse_deltas(ctx: Context, thread_id: str, stream_id: str, after: int,
                     request: Request) -> AsyncIterator[bytes]:
    """Replay the log after ``after``, then follow it until the stream ends."""
    streams = ctx.store.streams
    async with thread_wakeup(ctx.services.listener, thread_id) as woken:
        while True:
            woken.arm()
            for seq, parts in await streams.log(thread_id, stream_id, after=after):
                yield frames.sse_delta(seq, parts)
                after = seq
            info = await streams.get(stream_id)
            if info is None or (info.status != "streaming" and info.seq <= after):
                yield frames.sse_end(info.status if info is not None else "aborted", after)
                return
            if await request.is_disconnected():
                return
            await woken.wait()


def routes(services: Services) -> list[Route]:
    e = Endpoints(services)
    return [
        Route("/healthz", e.healthz, methods=["GET"]),
        Route("/readyz", e.readyz, methods=["GET"]),
        Route("/metrics", e.metrics, methods=["GET"]),
        Route("/api/stats", e.stats, methods=["GET"]),
        Route("/api/threads", e.threads, methods=["GET", "POST"]),
        Route("/api/threads/{thread_id}", e.thread, methods=["GET", "PATCH", "DELETE"]),
        Route("/api/threads/{thread_id}/messages", e.messages, methods=["GET", "POST"]),
        Route("/api/threads/{thread_id}/messages/delete-range", e.delete_range, methods=["POST"]),
        Route("/api/messages/delete", e.delete_messages, methods=["POST"]),
        Route("/api/messages/{message_id}", e.message, methods=["PATCH", "DELETE"]),
        Route("/api/messages/{message_id}/regenerate", e.regenerate, methods=["POST"]),
        Route("/api/messages/{message_id}/edit", e.edit, methods=["POST"]),
        Route("/api/threads/{thread_id}/branches", e.branches, methods=["GET", "POST"]),
        Route("/api/threads/{thread_id}/snippets", e.snippets, methods=["GET", "POST"]),
        Route("/api/snippets/{snippet_id}", e.snippet, methods=["DELETE"]),
        Route("/api/snippets/{snippet_id}/restore", e.canvas_restore, methods=["POST"]),
        Route("/api/threads/{thread_id}/canvases/{canvas_id}", e.canvas, methods=["GET"]),
        Route("/api/threads/{thread_id}/canvases/{canvas_id}/edits", e.canvas_edits, methods=["POST"]),
        Route("/api/threads/{thread_id}/abort", e.abort, methods=["POST"]),
        Route("/api/threads/{thread_id}/members", e.members, methods=["POST"]),
        Route("/api/threads/{thread_id}/members/{user_id}", e.member, methods=["DELETE"]),
        Route("/api/threads/{thread_id}/takeover", e.takeover, methods=["POST"]),
        Route("/api/threads/{thread_id}/presence", e.presence, methods=["GET", "POST"]),
        Route("/api/threads/{thread_id}/release", e.release, methods=["POST"]),
        Route("/api/threads/{thread_id}/approvals/{approval_id}", e.approval, methods=["POST"]),
        Route("/api/threads/{thread_id}/context", e.context, methods=["POST"]),
        Route("/api/streams/{stream_id}", e.stream_events, methods=["GET"]),
        Route("/api/rag/search", e.rag_search, methods=["POST"]),
        Route("/api/store/search", e.store_search, methods=["POST"]),
        Route("/api/store/{namespace}/items", e.store_items, methods=["GET"]),
        Route("/api/store/{namespace}/items/{key:path}", e.store_item, methods=["GET", "PUT", "DELETE"]),
        Route("/api/workflows", e.workflows, methods=["GET", "POST"]),
        Route("/api/schedules", e.schedules, methods=["GET", "POST"]),
        Route("/api/memory/working", e.working_memory, methods=["GET", "PUT"]),
        Route("/api/schedules/{schedule_id}", e.schedule, methods=["DELETE"]),
        Route("/api/schedules/{schedule_id}/pause", e.schedule, methods=["POST"]),
        Route("/api/schedules/{schedule_id}/resume", e.schedule, methods=["POST"]),
        Route("/api/workflows/{run_id}", e.workflow, methods=["GET"]),
        Route("/api/workflows/{run_id}/cancel", e.workflow_cancel, methods=["POST"]),
        Route("/api/workflows/{run_id}/events", e.workflow_event, methods=["POST"]),
        Route("/api/rag/{namespace}/documents", e.documents, methods=["GET", "POST"]),
        Route("/api/rag/{namespace}/documents/{key:path}", e.document, methods=["GET", "DELETE"]),
    ]


async def chat_error_handler(request: Request, exc: Exception) -> Response:
    if isinstance(exc, ChatError):
        return error_response(exc)
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(Internal("internal error"))

