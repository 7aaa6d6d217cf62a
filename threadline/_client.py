"""Python async client for the threadline WebSocket protocol.

    async with Client("ws://127.0.0.1:8000/ws", token) as c:
        tid = (await c.mutate("threads.create", {"title": "hi"}))["threadId"]
        async with c.subscribe("messages.list", {"threadId": tid}) as sub:
            async for value in sub:
                ...

It reconnects with capped exponential backoff, resubscribes, and resends
unanswered mutations with the same ids (the server runs each id once).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import websockets
from websockets.asyncio.client import ClientConnection, connect

from threadline.shared import patches

log = logging.getLogger("client")

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


class MutationError(Exception):
    """A mutation answered ok:false."""

    def __init__(self, code: str, message: str, retry_after_ms: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retry_after_ms = retry_after_ms


class SubscriptionError(Exception):
    """The server dropped a subscription with an error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Result:
    """A subscription's new value."""

    version: int
    value: Any


@dataclass(frozen=True, slots=True)
class Delta:
    """A piece of a reply being generated (``messages.list`` with ``streams: true``)."""

    stream_id: str
    seq: int
    parts: list[dict[str, Any]]

    @property
    def text(self) -> str:
        return "".join(p.get("text", "") for p in self.parts if p.get("type") == "text")


Event = Result | Delta


class Subscription:
    """A live query: iterate to get each new value (a slow reader sees the latest), or
    iterate ``events()`` to get every result and every stream delta, in order.

    With ``streams: true`` the subscription remembers the last seq of each stream,
    and after a reconnect resubscribes with those cursors: deltas go on where they
    were, never twice and never with a gap.
    """

    def __init__(self, client: Client, sub_id: str, query: str, args: dict[str, Any]) -> None:
        self._client = client
        self.id = sub_id
        self.query = query
        self.args = args
        self.version = -1
        self.value: Any = None
        self.error: SubscriptionError | None = None
        self.on_frame: Callable[[dict[str, Any]], None] | None = None
        self.cursors: dict[str, int] = {}  # last seq received per stream
        self._resuming: set[str] = set()  # streams resubscribed with a cursor (until the next result)
        self._stale = False  # a patch did not fit: waiting for the whole result asked for again
        self._seen = -1
        self._changed = asyncio.Event()
        self._events: asyncio.Queue[Event | SubscriptionError] | None = None

    def resubscribe_args(self) -> dict[str, Any]:
        """The args to subscribe with again after a reconnect (with the stream cursors)."""
        if self.args.get("streams") and self.cursors:
            self._resuming = set(self.cursors)  # their deltas are replayed after the cursor
            return {**self.args, "streamCursors": {**self.args.get("streamCursors", {}), **self.cursors}}
        return self.args

    def _result(self, frame: dict[str, Any]) -> None:
        self._stale = False
        if frame["version"] >= self.version:
            self.version, self.value = frame["version"], frame["value"]
            value = frame["value"]
            if isinstance(value, dict):
                for stream in value.get("streams") or []:  # the result carries the text up to this seq
                    sid = stream.get("streamId")
                    if sid and sid not in self._resuming and stream.get("seq", 0) > self.cursors.get(sid, 0):
                        self.cursors[sid] = stream["seq"]
                self._resuming = set()
            self._changed.set()
            if self._events is not None:
                self._events.put_nowait(Result(frame["version"], frame["value"]))

    def _patch(self, frame: dict[str, Any]) -> bool:
        """Apply a patch to the value held; False when it is not the value the patch starts from."""
        if self._stale:
            return True  # a whole result is on its way: patches before it are for the old value
        if self.version == -1 or frame["baseVersion"] != self.version:
            return False
        try:
            value = patches.apply(self.value, frame["ops"])
        except (LookupError, TypeError, ValueError):
            return False
        self._result({"version": frame["version"], "value": value})
        return True

    def _delta(self, frame: dict[str, Any]) -> None:
        sid, seq = frame["streamId"], frame["seq"]
        if seq <= self.cursors.get(sid, 0):
            return
        self.cursors[sid] = seq
        if self._events is not None:
            self._events.put_nowait(Delta(sid, seq, frame.get("parts", [])))

    def _failed(self, frame: dict[str, Any]) -> None:
        self.error = SubscriptionError(frame.get("code", "internal"), frame.get("message", ""))
        self._changed.set()
        if self._events is not None:
            self._events.put_nowait(self.error)

    def events(self) -> AsyncIterator[Event]:
        """Every ``Result`` and ``Delta`` from now on, in the order they arrived (the
        current value first, if there is one). Raises SubscriptionError when dropped."""
        if self._events is None:
            self._events = asyncio.Queue()
            if self.version != -1:
                self._events.put_nowait(Result(self.version, self.value))
        return self._iterate_events(self._events)

    @staticmethod
    async def _iterate_events(queue: asyncio.Queue[Event | SubscriptionError]) -> AsyncIterator[Event]:
        while True:
            item = await queue.get()
            if isinstance(item, SubscriptionError):
                raise item
            yield item

    async def next(self, timeout: float | None = None) -> Any:
        """The next value not yet returned (waits for one)."""
        while True:
            if self.error is not None:
                raise self.error
            if self.version != -1 and self.version != self._seen:
                self._seen = self.version
                return self.value
            self._changed.clear()
            await asyncio.wait_for(self._changed.wait(), timeout)

    async def wait_for(self, predicate: Callable[[Any], bool], timeout: float = 10.0) -> Any:
        """The first value (current or future) for which ``predicate`` holds."""
        async with asyncio.timeout(timeout):
            while True:
                if self.version != -1 and predicate(self.value):
                    self._seen = self.version
                    return self.value
                await self.next()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        while True:
            yield await self.next()

    async def close(self) -> None:
        await self._client._unsubscribe(self)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class Client:
    """One connection (kept alive across reconnects) to a threadline server."""

    def __init__(
        self,
        url: str,
        token: str | Callable[[], str],
        *,
        client_id: str | None = None,
        backoff: tuple[float, float] = (0.05, 5.0),
        open_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self._token = token
        self.client_id = client_id or "py-" + secrets.token_hex(8)
        self._backoff = backoff
        self._open_timeout = open_timeout
        self._ids = itertools.count(1)
        self._prefix = secrets.token_hex(4)
        self._subs: dict[str, Subscription] = {}
        self._pending: dict[str, tuple[str, dict[str, Any], asyncio.Future[Any]]] = {}
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._closed = False
        self.user_id: str | None = None
        self.session_id: str | None = None
        self.connects = 0
        self.last_error: str | None = None

    async def __aenter__(self) -> Client:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self, timeout: float = 10.0) -> None:
        """Connect (and keep reconnecting); returns once the first connect succeeded."""
        self._task = asyncio.create_task(self._run(), name="client-run")
        wait = asyncio.create_task(self._connected.wait())
        done, _ = await asyncio.wait({wait, self._task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if wait not in done:
            wait.cancel()
            await self.close()
            raise ConnectionError(f"could not connect to {self.url}: {self.last_error}")

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        for _, _, fut in self._pending.values():
            if not fut.done():
                fut.set_exception(ConnectionError("client closed"))

    async def drop_connection(self) -> None:
        """Close the socket as a network failure would (the client reconnects)."""
        if self._ws is not None:
            await self._ws.close()

    def _next_id(self, kind: str) -> str:
        return f"{kind}{self._prefix}-{next(self._ids)}"

    def subscribe(self, query: str, args: dict[str, Any] | None = None) -> Subscription:
        sub = Subscription(self, self._next_id("s"), query, args or {})
        self._subs[sub.id] = sub
        self._send_now({"type": "subscribe", "id": sub.id, "query": query, "args": sub.args, "patches": True})
        return sub

    @staticmethod
    def _subscribe_frame(sub: Subscription) -> dict[str, Any]:
        return {"type": "subscribe", "id": sub.id, "query": sub.query, "args": sub.resubscribe_args(),
                "patches": True}

    async def _unsubscribe(self, sub: Subscription) -> None:
        if self._subs.pop(sub.id, None) is not None:
            self._send_now({"type": "unsubscribe", "id": sub.id})

    async def mutate(self, name: str, args: dict[str, Any] | None = None, *,
                     request_id: str | None = None, timeout: float = 30.0) -> Any:
        """Run a mutation exactly once (resent after reconnects); its value or MutationError."""
        rid = request_id or self._next_id("m")
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[rid] = (name, args or {}, fut)
        self._send_now({"type": "mutate", "id": rid, "name": name, "args": args or {}})
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        finally:
            if fut.done():
                self._pending.pop(rid, None)

    def _send_now(self, frame: dict[str, Any]) -> None:
        ws = self._ws
        if ws is None or not self._connected.is_set():
            return  # sent on (re)connect
        asyncio.get_running_loop().create_task(self._send(ws, frame))

    @staticmethod
    async def _send(ws: ClientConnection, frame: dict[str, Any]) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.send(_encode(frame).decode())

    async def _run(self) -> None:
        attempt = 0
        while not self._closed:
            try:
                async with connect(self.url, open_timeout=self._open_timeout, max_size=None) as ws:
                    token = self._token() if callable(self._token) else self._token
                    await ws.send(_encode({"type": "connect", "protocol": 1, "token": token,
                                           "clientId": self.client_id}).decode())
                    first = _decode(await asyncio.wait_for(ws.recv(), self._open_timeout))
                    if first.get("type") != "connected":
                        self.last_error = f"{first.get('code')}: {first.get('message')}"
                        if first.get("code") == "unauthorized" and not callable(self._token):
                            return  # a fixed token the server refuses will not get better
                        raise ConnectionError(self.last_error)
                    self.user_id, self.session_id = first["userId"], first["sessionId"]
                    self._ws = ws
                    self.connects += 1
                    attempt = 0
                    for sub in list(self._subs.values()):
                        await ws.send(_encode(self._subscribe_frame(sub)).decode())
                    for rid, (name, args, _) in list(self._pending.items()):
                        await ws.send(_encode({"type": "mutate", "id": rid, "name": name,
                                               "args": args}).decode())
                    self._connected.set()
                    async for raw in ws:
                        self._dispatch(_decode(raw))
            except asyncio.CancelledError:
                raise
            except (OSError, websockets.WebSocketException, ConnectionError, TimeoutError) as exc:
                self.last_error = self.last_error or repr(exc)
            finally:
                self._ws = None
                self._connected.clear()
            if self._closed:
                return
            low, high = self._backoff
            delay = min(high, low * (2 ** attempt)) * (0.5 + random.random() / 2)
            attempt += 1
            await asyncio.sleep(delay)

    def _dispatch(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "result":
            sub = self._subs.get(frame["id"])
            if sub is not None:
                sub._result(frame)
        elif kind == "patch":
            sub = self._subs.get(frame["id"])
            if sub is None:
                return
            if not sub._patch(frame):
                sub._stale = True  # never expected on one ordered connection; recover with a whole result
                self._send_now({"type": "unsubscribe", "id": sub.id})
                self._send_now(self._subscribe_frame(sub))
            if sub.on_frame is not None:
                sub.on_frame(frame)
        elif kind == "mutated":
            entry = self._pending.get(frame["id"])
            if entry is not None and not entry[2].done():
                if frame.get("ok"):
                    entry[2].set_result(frame.get("value"))
                else:
                    err = frame.get("error") or {}
                    entry[2].set_exception(MutationError(err.get("code", "internal"), err.get("message", ""),
                                                         err.get("retryAfterMs")))
        elif kind == "error":
            sub = self._subs.pop(frame.get("id") or "", None)
            if sub is not None:
                sub._failed(frame)
            else:
                log.warning("server error: %s", frame)
        else:
            sub = self._subs.get(frame.get("id") or "")
            if sub is not None and kind == "delta":
                sub._delta(frame)
            if sub is not None and sub.on_frame is not None:
                sub.on_frame(frame)
