"""One WebSocket connection: connect handshake, subscriptions, mutations, bounded sending.

Frames are read by one task; subscribe/unsubscribe/mutate run in arrival order on
a second; a third writes the outgoing queue. The queue is bounded in frames and
in bytes: a client that stops reading is disconnected (its socket aborted at
once) instead of growing the server's memory. Every way out of a session
releases its live queries.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import msgspec
from starlette.websockets import WebSocket, WebSocketDisconnect

from threadline.server import frames
from threadline.server.context import Context, Services
from threadline.server.cors import websocket_origin_allowed
from threadline.server.live import SharedQuery
from threadline.server.mutate import run_mutation
from threadline.server.presence import leave_later
from threadline.server.queries import QUERIES
from threadline.server.ws import client_frames
from threadline.server.ws.transport import TOO_LARGE
from threadline.shared import logs, metrics
from threadline.shared.clock import now_ms
from threadline.shared.errors import (
    BadRequest,
    ChatError,
    Internal,
    TooLarge,
    Unauthorized,
    from_validation,
)
from threadline.shared.ids import new_session_id
from threadline.shared.patches import Change

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 2.0
WORK_QUEUE = 256
BAD_FRAMES_ALLOWED = 50
BAD_FRAMES_WINDOW_S = 10.0
READ_YOUR_WRITES_S = 5.0


class CloseCode:
    BAD_FIRST_FRAME = 4400
    UNAUTHORIZED = 4401
    CONNECT_TIMEOUT = 4408
    TOO_SLOW = 4413
    FLOOD = 4429


class State(enum.Enum):
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSED = "closed"


_ALLOWED = {
    State.CONNECTING: {State.OPEN, State.CLOSED},
    State.OPEN: {State.CLOSED},
    State.CLOSED: set(),
}


@dataclass(eq=False, slots=True)
class _Sub:
    id: str
    sq: SharedQuery | None = None
    version: int = -1
    value: str | None = None
    patches: bool = False  # the client applies patches after the first result
    sent: int = -1  # the version of the last result or patch sent: what the client holds
    cursors: dict[str, int] | None = None  # last delta seq sent, per stream
    resume: set[str] | None = None  # streams whose cursor the client gave (replay, don't skip)


class _Close:
    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


class Session:
    """The server side of one connected tab."""

    __slots__ = (
        "__weakref__",
        "_bad",
        "_main",
        "_out",
        "_out_bytes",
        "_present",
        "_processor",
        "_work",
        "_writer",
        "client_id",
        "ctx",
        "live",
        "services",
        "session_id",
        "state",
        "subs",
        "ws",
    )

    def __init__(self, websocket: WebSocket, services: Services) -> None:
        self.ws = websocket
        self.services = services
        self.live = services.live
        self.state = State.CONNECTING
        self.session_id = new_session_id()
        self.ctx: Context | None = None
        self.client_id = ""
        self.subs: dict[str, _Sub] = {}
        # Queues exist only while frames wait in them: an idle session holds neither.
        self._out: deque[tuple[_Sub | None, str] | _Close] | None = None
        self._out_bytes = 0  # characters of the frames in _out (a bound, not an exact byte count)
        self._work: deque[client_frames.ClientFrame] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._processor: asyncio.Task[None] | None = None
        self._main: asyncio.Task[object] | None = None
        self._bad: list[float] | None = None
        self._present: set[str] | None = None  # threads this connection said it views (left when it ends)

    def _to(self, state: State) -> None:
        if state not in _ALLOWED[self.state]:
            raise RuntimeError(f"illegal session transition {self.state.value} -> {state.value}")
        self.state = state

    # -- lifecycle -----------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until it closes. An idle session holds no task but this one."""
        ws, settings = self.ws, self.services.settings
        if not websocket_origin_allowed(settings, ws.headers.get("origin"), ws.headers.get("host"),
                                        ws.url.scheme == "wss"):
            await ws.close(1008)  # before accepting: the browser gets 403
            return
        await self.ws.accept()
        if not await self._handshake():
            return
        self._main = asyncio.current_task()
        expiry = self._schedule_expiry()
        self.services.sessions.add(self)
        try:
            await self._read()
        except asyncio.CancelledError:
            if self.state is not State.CLOSED or self._main is None:
                raise
            self._main.uncancel()  # we dropped this session ourselves (it stopped reading)
        finally:
            if expiry is not None:
                expiry.cancel()
            for task in (self._writer, self._processor):
                if task is not None:
                    task.cancel()
            self._cleanup()
            self.services.sessions.discard(self)

    async def _handshake(self) -> bool:
        try:
            message = await asyncio.wait_for(self.ws.receive(), CONNECT_TIMEOUT_S)
        except TimeoutError:
            await self._refuse(BadRequest("no connect frame in time"), CloseCode.CONNECT_TIMEOUT)
            return False
        if message["type"] == "websocket.disconnect":
            self._to(State.CLOSED)
            return False
        text = message.get("text")
        try:
            if text is None:
                raise msgspec.DecodeError("not a text frame")
            if message.get(TOO_LARGE):
                raise TooLarge(f"frame over {client_frames.MAX_FRAME} bytes")
            frame = client_frames.decode_frame(text)
        except (msgspec.DecodeError, msgspec.ValidationError, ChatError) as exc:
            message_of = exc.message if isinstance(exc, ChatError) else str(exc)
            await self._refuse(BadRequest(f"the first frame must be connect: {message_of}"), CloseCode.BAD_FIRST_FRAME)
            return False
        if not isinstance(frame, client_frames.Connect):
            await self._refuse(BadRequest("the first frame must be connect"), CloseCode.BAD_FIRST_FRAME)
            return False
        if frame.protocol != client_frames.PROTOCOL_VERSION:
            await self._refuse(BadRequest(f"unsupported protocol {frame.protocol}"), CloseCode.BAD_FIRST_FRAME)
            return False
        try:
            identity = await self.services.verifier.verify(frame.token)
        except Unauthorized as exc:
            await self._refuse(exc, CloseCode.UNAUTHORIZED)
            return False
        self.ctx = Context(self.services, identity, connection=self.session_id)
        self.client_id = frame.client_id
        self._to(State.OPEN)
        await self.ws.send_text(frames.connected(identity.user_id, self.session_id, now_ms()))
        return True

    async def _refuse(self, exc: ChatError, code: int) -> None:
        with contextlib.suppress(Exception):
            await self.ws.send_text(frames.error(exc))
            await self.ws.close(code, exc.message[:120])
        self._to(State.CLOSED)

    def _schedule_expiry(self) -> asyncio.TimerHandle | None:
        assert self.ctx is not None
        exp = self.ctx.identity.expires_at
        if exp is None:
            return None
        delay = max(0.0, exp - time.time())
        return asyncio.get_running_loop().call_later(
            delay, self._close_soon, CloseCode.UNAUTHORIZED, "token expired", Unauthorized("token expired")
        )

    def _close_soon(self, code: int, reason: str, exc: ChatError | None = None) -> None:
        if exc is not None:
            self._send(None, frames.error(exc))
        if self.state is State.OPEN:
            self._queue_out(_Close(code, reason))

    def _drop(self) -> None:
        """End a session that stopped reading: no close handshake can get through."""
        log.warning("session %s is not reading; disconnecting it", self.session_id)
        self._to(State.CLOSED)
        self._out, self._out_bytes = None, 0
        self._abort_transport()
        if self._main is not None:
            self._main.cancel()

    def _abort_transport(self) -> None:
        """Close the socket now, dropping unsent bytes (asyncio's close() would wait for them)."""
        protocol = getattr(self.ws._send, "__self__", None)  # uvicorn's protocol object
        transport = getattr(protocol, "transport", None)
        if transport is not None and hasattr(transport, "abort"):
            transport.abort()

    async def _close_now(self, code: int, reason: str) -> None:
        """Stop all work of this session and close with ``code`` (abort if the peer won't take it)."""
        for task in (self._processor, self._writer):
            if task is not None:
                task.cancel()
        self._work, self._out, self._out_bytes = None, None, 0
        if self.state is State.OPEN:
            self._to(State.CLOSED)
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await self.ws.close(code, reason)
        except Exception:
            self._abort_transport()

    def _note_presence(self, value: dict[str, Any]) -> None:
        if value["here"]:
            self._present = (self._present or set()) | {value["threadId"]}
        elif self._present is not None:
            self._present.discard(value["threadId"])

    def _cleanup(self) -> None:
        if self.state is not State.CLOSED:
            self._to(State.CLOSED)
        if self._present and self.ctx is not None:  # every other tab sees this one go now, not at its expiry
            leave_later(self.ctx, self._present)
            self._present = None
        for sub in self.subs.values():
            if sub.sq is not None:
                self.live.unsubscribe(sub.sq, self, sub.id)
        self.subs.clear()

    # -- reading, processing, writing -------------------------------------------

    async def _read(self) -> None:
        while True:
            try:
                message = await self.ws.receive()
            except WebSocketDisconnect:
                return
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                self._bad_frame(BadRequest("frames must be JSON text"))
                continue
            if message.get(TOO_LARGE):  # skipped by the transport: only its first bytes are here
                self._refuse_frame(text, TooLarge(f"frame over {client_frames.MAX_FRAME} bytes"))
                continue
            try:
                frame = client_frames.decode_frame(text)
            except (msgspec.DecodeError, msgspec.ValidationError, ChatError) as exc:
                self._refuse_frame(text, exc)
                continue
            if isinstance(frame, client_frames.Ping):
                self._send(None, frames.pong(frame.t))
            elif isinstance(frame, client_frames.Connect):
                self._bad_frame(BadRequest("already connected"))
            elif self._work is not None and len(self._work) >= WORK_QUEUE:
                await self._close_now(CloseCode.FLOOD, "too many frames in flight")
                return
            else:
                if self._work is None:
                    self._work = deque()
                self._work.append(frame)
                if self._processor is None:
                    self._processor = asyncio.create_task(self._process())

    async def _process(self) -> None:
        """Run queued frames in arrival order; exits when there are none."""
        try:
            while self._work:
                frame = self._work.popleft()
                if not self._work:
                    self._work = None
                logs.request_id.set(f"{self.session_id}/{getattr(frame, 'id', '')}")
                try:
                    if isinstance(frame, client_frames.Subscribe):
                        await self._subscribe(frame)
                    elif isinstance(frame, client_frames.Unsubscribe):
                        self._unsubscribe(frame.id)
                    elif isinstance(frame, client_frames.Mutate):
                        await self._mutate(frame)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("frame %s failed", type(frame).__name__)
                    if isinstance(frame, client_frames.Mutate):
                        self._mutated_error(frame.id, Internal("internal error"))
                    else:
                        self._send(None, frames.error(Internal("internal error"), getattr(frame, "id", None)))
        finally:
            self._processor = None

    def _queue_out(self, item: tuple[_Sub | None, str] | _Close) -> None:
        if self._out is None:
            self._out = deque()
        self._out.append(item)
        if self._writer is None:
            self._writer = asyncio.create_task(self._write())

    async def _write(self) -> None:
        """Send queued frames in order; exits when there are none."""
        try:
            while self._out:
                item = self._out.popleft()
                if not self._out:
                    self._out, self._out_bytes = None, 0
                elif not isinstance(item, _Close):
                    self._out_bytes -= len(item[1])
                if isinstance(item, _Close):
                    with contextlib.suppress(Exception):
                        await self.ws.close(item.code, item.reason)
                    self._out, self._out_bytes = None, 0
                    return
                sub, text = item
                if sub is not None and self.subs.get(sub.id) is not sub:
                    continue  # unsubscribed meanwhile: no more frames carry that id
                try:
                    await self.ws.send_text(text)
                    metrics.frames_sent.inc()
                    metrics.bytes_sent.inc(len(text))
                except (WebSocketDisconnect, RuntimeError, OSError):
                    self._out, self._out_bytes = None, 0
                    return
        finally:
            self._writer = None

    # -- frames --------------------------------------------------------------

    async def _subscribe(self, f: client_frames.Subscribe) -> None:
        assert self.ctx is not None
        if f.id in self.subs:
            self._send(None, frames.error(BadRequest(f"subscription id {f.id!r} is in use"), f.id))
            return
        if len(self.subs) >= self.services.settings.ws_max_subscriptions:
            limit = self.services.settings.ws_max_subscriptions
            self._send(None, frames.error(BadRequest(f"at most {limit} subscriptions per connection"), f.id))
            return
        query = QUERIES.get(f.query)
        if query is None:
            self._send(None, frames.error(BadRequest(f"unknown query {f.query!r}"), f.id))
            return
        try:
            args: Any = msgspec.json.decode(f.args, type=query.args_type)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
            self._send(None, frames.error(from_validation(exc), f.id))
            return
        sub = self.subs[f.id] = _Sub(f.id, patches=f.patches)
        args, cursors = query.split(args)  # cursors are this subscriber's own, not shared
        if cursors:
            sub.cursors, sub.resume = cursors, set(cursors)
        try:
            sq = await self.live.subscribe(self.ctx, query, args, self, f.id)
        except ChatError as exc:
            if self.subs.get(f.id) is sub:
                del self.subs[f.id]
            self._send(None, frames.error(exc, f.id))
            return
        if self.state is not State.OPEN or self.subs.get(f.id) is not sub:
            # the session ended while the query ran (a cancellation can be lost in a race)
            self.live.unsubscribe(sq, self, f.id)
            return
        sub.sq = sq

    def _unsubscribe(self, sub_id: str) -> None:
        sub = self.subs.pop(sub_id, None)
        if sub is not None and sub.sq is not None:
            self.live.unsubscribe(sub.sq, self, sub_id)

    async def _mutate(self, f: client_frames.Mutate) -> None:
        assert self.ctx is not None
        outcome = await run_mutation(self.ctx, f.name, bytes(f.args), ("ws", self.client_id, f.id))
        if outcome.ok and outcome.channels:
            # Read your writes: this connection's changed results go out before `mutated`.
            mine = {sub.sq for sub in self.subs.values() if sub.sq is not None}
            changed = self.live.affected(outcome.channels, mine)
            if changed:
                # a result the store cannot give now must not hold back the answer
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(READ_YOUR_WRITES_S):
                        await asyncio.gather(*(self.live.refresh(sq) for sq in changed))
        if outcome.ok and f.name == "presence.set":
            self._note_presence(msgspec.json.decode(bytes(outcome.value)))
        if outcome.ok:
            self._send(None, frames.mutated(f.id, value=bytes(outcome.value), version=outcome.version))
        else:
            self._send(None, frames.mutated_error(f.id, outcome.error or {"code": "internal", "message": ""}))

    def _mutated_error(self, request_id: str, exc: ChatError) -> None:
        self._send(None, frames.mutated_error(request_id, exc))

    # -- delivery (called by LiveQueries) -------------------------------------

    def deliver_result(self, sub_id: str, version: int, value: str, streams: dict[str, int],
                       change: Change | None = None) -> None:
        sub = self.subs.get(sub_id)
        if sub is None or version <= sub.version:
            return
        held = sub.value
        sub.version, sub.value = version, value
        if value is held:
            return
        ops = change.ops_from(held) if sub.patches and change is not None else None
        if ops is None:
            self._send(sub, frames.result(sub_id, version, value))
        else:
            self._send(sub, frames.patch(sub_id, version, sub.sent, ops))
        sub.sent = version
        if not streams:
            return
        cursors = sub.cursors if sub.cursors is not None else {}
        sub.cursors = cursors
        resume = sub.resume or set()
        for stream_id, seq in streams.items():
            if stream_id not in resume:
                # the result carries the text up to `seq`: deltas continue after it
                cursors[stream_id] = max(cursors.get(stream_id, 0), seq)
        sub.resume = None

    def deliver_deltas(self, sub_id: str, stream_id: str, parts: list[str]) -> None:
        """Send the deltas after this subscription's cursor (never one twice, never a gap)."""
        sub = self.subs.get(sub_id)
        if sub is None or sub.version < 0:
            return  # the first result carries the text so far; deltas follow it
        if sub.cursors is None:
            sub.cursors = {}
        cursor = sub.cursors.get(stream_id, 0)
        if cursor >= len(parts):
            return
        for seq in range(cursor + 1, len(parts) + 1):
            self._send(sub, frames.delta(sub_id, stream_id, seq, parts[seq - 1]))
        metrics.deltas_relayed.inc(len(parts) - cursor)
        sub.cursors[stream_id] = len(parts)

    def deliver_error(self, sub_id: str, error: ChatError) -> None:
        sub = self.subs.pop(sub_id, None)
        if sub is not None:
            self._send(None, frames.error(error, sub_id))

    def _send(self, sub: _Sub | None, text: str) -> None:
        if self.state is not State.OPEN:
            return
        settings = self.services.settings
        if self._out is not None and (len(self._out) >= settings.ws_send_queue
                                      or self._out_bytes + len(text) > settings.ws_send_queue_bytes):
            self._drop()
            return
        self._out_bytes += len(text)
        self._queue_out((sub, text))

    def _refuse_frame(self, text: str, exc: Exception) -> None:
        """Answer a frame that cannot be read: a mutate by its id with `mutated`, others with `error`."""
        err = exc if isinstance(exc, ChatError) else from_validation(exc)  # type: ignore[arg-type]
        kind, ident = client_frames.envelope(text)
        if kind == "mutate" and ident is not None:
            self._mutated_error(ident, err)
            self._count_bad()
        else:
            self._bad_frame(err, ident)

    def _bad_frame(self, exc: ChatError, sub_id: str | None = None) -> None:
        self._send(None, frames.error(exc, sub_id))
        self._count_bad()

    def _count_bad(self) -> None:
        now = time.monotonic()
        self._bad = [t for t in self._bad or () if now - t < BAD_FRAMES_WINDOW_S]
        self._bad.append(now)
        if len(self._bad) > BAD_FRAMES_ALLOWED:
            self._close_soon(CloseCode.FLOOD, "too many bad frames")


__all__ = ["CloseCode", "Session", "State"]
