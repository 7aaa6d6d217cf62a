"""The Vercel AI SDK's chat transport, served for threads: ``useChat`` works unchanged.

``POST /api/chat`` takes what ``DefaultChatTransport`` sends (``{id, messages,
trigger, messageId}``; ``id`` is the thread's id) and answers with the reply as
a UI message stream (server.ui_stream). The server stays the store of record: of
the messages the SDK sends, only the new one counts: a user message is sent
(once per UI message id, however often it is resent), a ``regenerate-message``
answers the thread's last prompt again, and an assistant message whose human
tool parts the page answered (``addToolOutput``) continues that reply.
``GET /api/chat/{id}/stream`` is the SDK's resume after a reload: 204 when
nothing runs, else the running reply from its start.

The SDK's ``stop()`` closes the request: the reply is aborted, unless the body
asked ``keepRunning: true`` (for pages that resume instead).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import secrets
import time
import urllib.parse
from collections.abc import AsyncIterator, Coroutine
from typing import Any, NamedTuple

import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from threadline.server.auth import context_of
from threadline.server.context import Context, Services
from threadline.server.files_api import local_link, public_base
from threadline.server.http_api import _body, _convert, json_response
from threadline.server.mutate import run_mutation, value_of
from threadline.server.ui_stream import (
    DONE,
    HEADERS,
    PING,
    UIStream,
    decode_parts,
    error_chunk,
    sse,
    ui_messages,
)
from threadline.server.wakeup import Wakeup, thread_wakeup
from threadline.shared import jobs
from threadline.shared.errors import BadRequest, Conflict, NotFound
from threadline.shared.ids import THREAD_ID_RULE, valid_chosen_id
from threadline.shared.records import (
    FilePart,
    ImagePart,
    Message,
    Part,
    SourcePart,
    TextPart,
    ToolApprovalRequestPart,
    ToolCallPart,
    ToolResultPart,
)
from threadline.shared.score import score
from threadline.shared.storage.pagination import MAX_PAGE, parse_digits
from threadline.shared.streams.records import StreamInfo

STREAM_WAIT_S = 300.0  # how long a sent message's reply may take to start (a queue ahead of it)
JOB_CHECK_S = 1.0  # how often a wait for the reply's stream checks that its job may still open it
_aborts: set[asyncio.Task[Any]] = set()


class UIMessage(msgspec.Struct, kw_only=True):
    id: str = ""
    role: str = "user"
    parts: list[dict[str, Any]] = []
    metadata: dict[str, Any] | None = None  # a user message's is saved as the message's metadata


class ChatBody(msgspec.Struct, rename="camel", kw_only=True):
    id: str  # the thread
    messages: list[UIMessage]
    trigger: str = "submit-message"
    message_id: str | None = None
    agent_name: str | None = None
    keep_running: bool = False
    context: dict[str, Any] | None = None  # for the reply (useChat's `body`): see messages.send
    options: dict[str, Any] | None = None

    def for_reply(self) -> dict[str, Any]:
        """The fields of a send or regenerate that shape the reply."""
        return {"agentName": self.agent_name, **({"context": self.context} if self.context is not None else {}),
                **({"options": self.options} if self.options is not None else {})}


def routes(services: Services) -> list[Route]:
    async def context(request: Request) -> Context:
        return await context_of(services, request)

    async def chat(request: Request) -> Response:
        ctx = await context(request)
        body = _convert(await _body(request), ChatBody)
        await _thread_for(ctx, body.id)
        if not body.messages:
            raise BadRequest("no messages")
        sent = await _send(ctx, body)
        base = public_base(services.settings, request)
        return StreamingResponse(_reply(ctx, body.id, sent, body.keep_running, base), media_type="text/event-stream",
                                 headers=HEADERS)

    async def resume(request: Request) -> Response:
        ctx = await context(request)
        thread_id = request.path_params["thread_id"]
        await ctx.store.threads.get(thread_id, ctx.user_id)
        running = [s for s in await ctx.store.streams.list(thread_id) if s.status == "streaming"]
        if not running:
            return Response(status_code=204)
        return StreamingResponse(_follow(ctx, thread_id, running[-1].stream_id, True,
                                         public_base(services.settings, request)),
                                 media_type="text/event-stream", headers=HEADERS)

    async def history(request: Request) -> Response:
        """The thread's messages as UIMessage[] (``useChat({ messages })`` after a reload): the newest
        ``numItems`` messages (a reply is never cut), oldest first; ``continueCursor`` for older ones."""
        ctx = await context(request)
        thread_id = request.path_params["thread_id"]
        q = request.query_params
        num = parse_digits(q.get("numItems", "100"), "numItems", MAX_PAGE) or 1
        _, page = await ctx.store.messages.list(thread_id, ctx.user_id, num_items=num, cursor=q.get("cursor") or None)
        messages, cursor = page.page, ""
        if not page.is_done:  # the oldest reply may go on past the page: take all of it, continue before it
            oldest = messages[-1].order
            messages = [m for m in messages if m.order != oldest][::-1]
            messages = [*await ctx.store.messages.in_orders(thread_id, oldest, oldest), *messages]
            cursor = str(score(oldest))
        else:
            messages = messages[::-1]
        base = public_base(services.settings, request)
        links = {fid: await _signed(ctx, fid, base) for m in messages for p in m.parts
                 if isinstance(p, ImagePart | FilePart) and p.file_id for fid in [p.file_id]}
        return json_response({"messages": ui_messages(messages, links), "continueCursor": cursor,
                              "isDone": not cursor})

    return [Route("/api/chat", chat, methods=["POST"]),
            Route("/api/chat/{thread_id}/stream", resume, methods=["GET"]),
            Route("/api/chat/{thread_id}/messages", history, methods=["GET"])]


async def _thread_for(ctx: Context, chat_id: str) -> None:
    """The chat's thread: the caller's, or made for them when the id names none yet (useChat makes
    its chat ids itself); another user's stays not found."""
    try:
        await ctx.store.threads.get(chat_id, ctx.user_id)
        return
    except NotFound:
        if not valid_chosen_id(chat_id):
            raise BadRequest(f"a chat id is {THREAD_ID_RULE} to name a new thread") from None
    try:
        await ctx.store.threads.create(ctx.user_id, thread_id=chat_id)
    except Conflict:  # made meanwhile (the same chat's other request) or another user's
        await ctx.store.threads.get(chat_id, ctx.user_id)


class _Sent(NamedTuple):
    """What a request asked for: the order its reply is at, the streams there before, its job."""

    order: int
    known: set[str]
    job_id: str
    held: bool = False  # a person has the thread (threads.takeover): no agent answers


async def _send(ctx: Context, body: ChatBody) -> _Sent:
    """Do what the new UI message asks."""
    thread_id, last = body.id, body.messages[-1]
    if body.trigger == "regenerate-message":
        # every regenerate is a new reply (useChat sends the same body each time): its own attempt
        prompt, attempt = await _last_prompt(ctx, thread_id), secrets.token_hex(8)
        known = await _streams_at(ctx, thread_id, prompt.order)
        await _mutate(ctx, "messages.regenerate", {"messageId": prompt.message_id, "attempt": attempt,
                                                   **body.for_reply()},
                      ("ai-sdk-regenerate", thread_id, attempt))
        return _Sent(prompt.order, known, jobs.job_id(f"{prompt.message_id}-{attempt}"))
    if last.role == "user" and body.message_id and body.message_id == last.id:
        return await _edit(ctx, body, last)
    if last.role == "user":
        args = {"threadId": thread_id, "message": {"role": "user", "content": await _content(ctx, last)},
                "clientMessageId": last.id or None, "metadata": last.metadata, **body.for_reply()}
        # stored once per UI message id; a message without one is a message of its own each time
        value = await _mutate(ctx, "messages.send", args, ("ai-sdk", thread_id, last.id or secrets.token_hex(12)))
        return _Sent(int(value["order"]), set(), jobs.job_id(value["messageId"]), bool(value.get("held")))
    if last.role == "assistant":
        return await _tool_outputs(ctx, body, last)
    raise BadRequest(f"nothing to do for a {last.role} message")


async def _edit(ctx: Context, body: ChatBody, last: UIMessage) -> _Sent:
    """``sendMessage({text, messageId})``: a new version of that user message (messages.edit), once
    per content (a resend replays it; the old version stays a branch of the thread)."""
    content = await _content(ctx, last)
    _, page = await ctx.store.messages.list(body.id, ctx.user_id, num_items=MAX_PAGE)
    edited = next((m for m in page.page if m.role == "user" and last.id in (m.client_message_id, m.message_id)), None)
    if edited is None:
        raise NotFound(f"message {last.id} is not a user message of this chat's {MAX_PAGE} newest")
    digest = hashlib.sha256(msgspec.json.encode(content)).hexdigest()[:24]
    value = await _mutate(ctx, "messages.edit", {"messageId": edited.message_id, "message": {"role": "user", "content": content},
                                                 "clientMessageId": last.id, "metadata": last.metadata, **body.for_reply()},
                          ("ai-sdk-edit", body.id, last.id, digest))
    return _Sent(int(value["order"]), set(), jobs.job_id(value["messageId"]), bool(value.get("held")))


async def _mutate(ctx: Context, name: str, args: dict[str, Any], request: tuple[str, ...]) -> Any:
    """A mutation, once per ``request`` (a resent UI message replays its first outcome)."""
    return value_of(await run_mutation(ctx, name, {k: v for k, v in args.items() if v is not None}, request))


async def _content(ctx: Context, message: UIMessage) -> list[Any]:
    """A UI message's text and files as our parts: a file sent inline (a data: URL, as the SDK sends
    picked files) is kept as a file of the user, so the model reads it; others go by URL."""
    out: list[Part] = []
    for part in message.parts:
        kind = part.get("type")
        if kind == "text" and part.get("text"):
            out.append(TextPart(text=str(part["text"])))
        elif kind == "file" and isinstance(part.get("url"), str) and part["url"].startswith("data:"):
            name = part.get("filename") if isinstance(part.get("filename"), str) else "file"
            record = await ctx.services.files.upload(ctx.user_id, str(name), _data_url(part["url"]))
            image = record.media_type.startswith("image/")
            out.append(ImagePart(file_id=record.file_id) if image else FilePart(file_id=record.file_id))
        elif kind == "file" and isinstance(part.get("url"), str):
            media = str(part.get("mediaType") or "application/octet-stream")
            if media.startswith("image/"):
                out.append(ImagePart(url=part["url"], mime_type=media))
            else:
                name = part.get("filename")
                out.append(FilePart(url=part["url"], mime_type=media, filename=name if isinstance(name, str) else None))
    if not out:
        raise BadRequest("the message has no text or file parts")
    return list(msgspec.to_builtins(out))


def _data_url(url: str) -> bytes:
    header, _, payload = url.partition(",")
    try:
        if header.endswith(";base64"):
            return base64.b64decode(payload, validate=True)
        return urllib.parse.unquote_to_bytes(payload)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(f"a file's data: URL is not valid: {exc}") from None


async def _last_prompt(ctx: Context, thread_id: str) -> Message:
    _, page = await ctx.store.messages.list(thread_id, ctx.user_id, num_items=50)
    prompt = next((m for m in page.page if m.role == "user"), None)
    if prompt is None:
        raise BadRequest("nothing to regenerate: the thread has no user message")
    return prompt


async def _streams_at(ctx: Context, thread_id: str, order: int) -> set[str]:
    return {s.stream_id for s in await ctx.store.streams.list(thread_id) if s.order == order}


async def _tool_outputs(ctx: Context, body: ChatBody, last: UIMessage) -> _Sent:
    """The page answered a human tool (``addToolOutput``): send the results and continue the reply.
    Or it decided on approval requests (``addToolApprovalResponse``): ``tools.approve`` each."""
    decided = [p for p in last.parts if str(p.get("type", "")).startswith(("tool-", "dynamic-tool"))
               and p.get("state") == "approval-responded" and isinstance(p.get("approval"), dict)]
    if decided:
        return await _approvals(ctx, body, decided)
    answered = [p for p in last.parts if str(p.get("type", "")).startswith(("tool-", "dynamic-tool"))
                and p.get("state") in ("output-available", "output-error")]
    if not answered:
        raise BadRequest("the assistant message answers no tool call")
    _, page = await ctx.store.messages.list(body.id, ctx.user_id, num_items=50)
    calls = {p.tool_call_id: (m, p) for m in page.page for p in m.parts if isinstance(p, ToolCallPart)}
    answered_ids = {p.tool_call_id for m in page.page for p in m.parts if isinstance(p, ToolResultPart)}
    results: list[ToolResultPart] = []
    order = None
    for part in answered:
        call_id = str(part.get("toolCallId", ""))
        if call_id not in calls or call_id in answered_ids:
            continue  # not ours, or answered before: the SDK sends the whole history each time
        message, call = calls[call_id]
        order = message.order
        error = part.get("state") == "output-error"
        results.append(ToolResultPart(tool_call_id=call_id, tool_name=call.tool_name,
                                      result=part.get("errorText") if error else part.get("output"), is_error=error))
    if order is None:
        raise BadRequest("no pending tool call of this thread is answered")
    prompt = next((m for m in page.page if m.order == order and m.role == "user"), None)
    if prompt is None:
        raise NotFound("the prompt of that tool call is gone")
    known = await _streams_at(ctx, body.id, order)
    value = await _mutate(ctx, "messages.send", {"threadId": body.id, "message": {"role": "tool",
                                                                          "content": msgspec.to_builtins(results)},
                                         "promptMessageId": prompt.message_id, **body.for_reply()},
                  ("ai-sdk-tool", body.id, *sorted(r.tool_call_id for r in results)))
    return _Sent(order, known, jobs.job_id(value["messageId"]))


async def _approvals(ctx: Context, body: ChatBody, decided: list[dict[str, Any]]) -> _Sent:
    """Each decision as ``tools.approve`` (once per approval: the SDK sends the history again each
    time); the reply that goes on is the step's continuation job."""
    _, page = await ctx.store.messages.list(body.id, ctx.user_id, num_items=50)
    steps = {p.approval_id: m for m in page.page for p in m.parts if isinstance(p, ToolApprovalRequestPart)}
    ours = [(part["approval"], steps[str(part["approval"].get("id", ""))]) for part in decided
            if str(part["approval"].get("id", "")) in steps]
    if not ours:
        raise BadRequest("no approval request of this thread is answered")
    step = ours[0][1]
    known = await _streams_at(ctx, body.id, step.order)  # before: the reply that goes on opens a new one
    for approval, _ in ours:
        approval_id = str(approval["id"])
        reason = approval.get("reason")
        await _mutate(ctx, "tools.approve", {"threadId": body.id, "approvalId": approval_id,
                                             "approved": bool(approval.get("approved")),
                                             "reason": reason if isinstance(reason, str) else None},
                      ("ai-sdk-approval", body.id, approval_id))
    return _Sent(step.order, known, jobs.job_id(f"{step.message_id}-decided"))


async def _reply(ctx: Context, thread_id: str, sent: _Sent, keep_running: bool, base: str) -> AsyncIterator[bytes]:
    """Wait for the reply's stream to open (pinging), then follow it. A job that ended without
    opening one ends the wait at once; leaving before it opens (``stop()``) stops the queued job."""
    if sent.held:  # saved; the person who has the thread answers (their message reaches the page live)
        yield DONE
        return
    started = pinged = checked = time.monotonic()
    opened = False
    try:
        async with thread_wakeup(ctx.services.listener, thread_id) as woken:  # a stream opening wakes it
            fresh = await _opened(ctx, thread_id, sent, woken)
            while not fresh:
                now = time.monotonic()
                if now > started + STREAM_WAIT_S:
                    yield sse(error_chunk("the reply did not start in time"))
                    yield DONE
                    return
                if now - checked > JOB_CHECK_S:
                    checked = now
                    if not await _job_may_start(ctx, sent.job_id) and not await _opened(ctx, thread_id, sent, woken):
                        yield sse(error_chunk("the reply did not start: its job ended without it"))
                        yield DONE
                        return
                if now - pinged > ctx.services.settings.sse_ping_s:
                    pinged = now
                    yield PING
                await woken.wait(min(JOB_CHECK_S, ctx.services.settings.sse_ping_s))
                fresh = await _opened(ctx, thread_id, sent, woken)
            opened = True
            async for chunk in _follow(ctx, thread_id, fresh[-1].stream_id, keep_running, base, woken):
                yield chunk
    finally:
        if not opened and not keep_running:  # stop() before the reply started: it never will
            _in_background(ctx.store.streams.abort_replies(thread_id, [sent.job_id]))


@contextlib.asynccontextmanager
async def _awake(ctx: Context, thread_id: str, woken: Wakeup | None) -> AsyncIterator[Wakeup]:
    """``woken``, or a Wakeup of the thread's own while the block runs."""
    if woken is not None:
        yield woken
        return
    async with thread_wakeup(ctx.services.listener, thread_id) as own:
        yield own


async def _opened(ctx: Context, thread_id: str, sent: _Sent, woken: Wakeup) -> list[StreamInfo]:
    """The streams of the sent prompt's reply opened so far (``woken`` armed first: a stream opening
    after this read ends the next wait)."""
    woken.arm()
    return [s for s in await ctx.store.streams.list(thread_id)
            if s.order == sent.order and s.stream_id not in sent.known]


async def _job_may_start(ctx: Context, job_id: str) -> bool:
    """Whether the job still stands for a reply to come (queued, or running)."""
    status = await ctx.services.runtime.rq.hget(jobs.job_key(job_id), "status")
    return status is not None and (status in jobs.WAITING or status == b"started")


def _in_background(work: Coroutine[Any, Any, Any]) -> None:
    """Run ``work`` to its end even though the request that asked for it is gone."""
    task = asyncio.create_task(work)
    _aborts.add(task)
    task.add_done_callback(_aborts.discard)


async def _follow(ctx: Context, thread_id: str, stream_id: str, keep_running: bool,
                  base: str, woken: Wakeup | None = None) -> AsyncIterator[bytes]:
    """A stream's deltas from its start as UI chunks, until it ends. Leaving early (the client went
    away: ``stop()``) aborts it, unless ``keep_running``. ``base``: where the browser reaches this
    server (file links are absolute: a page on another origin loads them from here)."""
    streams, ui = ctx.store.streams, UIStream()
    info = await streams.get(stream_id)
    if info is None:
        raise NotFound(f"stream {stream_id} not found")
    ended = False
    try:
        for chunk in ui.begin(info.message_id):
            yield sse(chunk)
        after, said = 0, time.monotonic()
        async with _awake(ctx, thread_id, woken) as woken:
            while True:
                woken.arm()
                for seq, parts in await streams.log(thread_id, stream_id, after=after):
                    for chunk in ui.parts(decode_parts(parts)):
                        yield sse(chunk)
                    after, said = seq, time.monotonic()
                info = await streams.get(stream_id)
                if info is None or (info.status != "streaming" and info.seq <= after):
                    break
                if time.monotonic() - said > ctx.services.settings.sse_ping_s:
                    said = time.monotonic()
                    yield PING
                await woken.wait()
        ended = True
        reply = await _reply_message(ctx, info.message_id if info else "")
        for chunk in ui.parts(_shown(reply)):
            yield sse(chunk)
        for chunk in ui.files(await _links(ctx, reply, base)):
            yield sse(chunk)
        status: str = info.status if info is not None else "aborted"
        error = reply.error if reply is not None and reply.status == "failed" else None
        if status == "aborted" and error not in (None, "aborted"):
            status = "failed"
        for chunk in ui.end(status, error if status == "failed" else None, waiting=ui.waiting):
            yield sse(chunk)
        yield DONE
    finally:
        if not ended and not keep_running:  # stop(): the client closed the request
            _in_background(streams.abort(thread_id, stream_id))


async def _reply_message(ctx: Context, message_id: str) -> Message | None:
    try:
        return await ctx.store.messages.get(message_id) if message_id else None
    except NotFound:
        return None


async def _signed(ctx: Context, file_id: str, base: str) -> tuple[str, str]:
    """A short-lived link to a file (absolute: ``base`` is this server's origin), and its media type."""
    record = await ctx.services.files.get(file_id, None)
    ttl = ctx.services.settings.files_url_ttl_s
    url = await ctx.services.files.blobs.signed_url(record.hash, ttl)
    return url or base + local_link(ctx.services.secret, record.file_id, ttl)[0], record.media_type


def _shown(reply: Message | None) -> list[dict[str, Any]]:
    """The parts a reply keeps that its deltas did not carry (its sources)."""
    if reply is None:
        return []
    return [msgspec.to_builtins(p) for p in reply.parts if isinstance(p, SourcePart)]


async def _links(ctx: Context, reply: Message | None, base: str) -> list[tuple[str, str]]:
    """Signed links of the reply's images and files (a generated image, say)."""
    if reply is None:
        return []
    out = []
    for part in reply.parts:
        if isinstance(part, ImagePart | FilePart) and part.file_id:
            out.append(await _signed(ctx, part.file_id, base))
        elif isinstance(part, ImagePart | FilePart) and part.url:
            out.append((part.url, part.mime_type or "application/octet-stream"))
    return out
