"""Raw WebSocket helpers for protocol tests."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from tests.conftest import token_for


async def recv(ws: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def send(ws: ClientConnection, frame: dict[str, Any]) -> None:
    await ws.send(json.dumps(frame))


async def open_raw(base: str, user: str = "alice", client_id: str = "raw-tab", *, token: str | None = None,
                   **kw: Any) -> ClientConnection:
    """A connected raw client (the `connected` frame already read); ``token`` instead of a plain one for ``user``."""
    ws = await websockets.connect(base.replace("http", "ws") + "/ws", max_size=None, **kw)
    await send(ws, {"type": "connect", "protocol": 1, "token": token or token_for(user), "clientId": client_id})
    frame = await recv(ws)
    assert frame["type"] == "connected", frame
    return ws


async def until(ws: ClientConnection, predicate: Any, timeout: float = 5.0) -> dict[str, Any]:
    """The first frame for which predicate holds (earlier frames are skipped)."""
    async with asyncio.timeout(timeout):
        while True:
            frame = await recv(ws, timeout)
            if predicate(frame):
                return frame


async def no_frame(ws: ClientConnection, within: float = 0.3) -> None:
    try:
        frame = await asyncio.wait_for(ws.recv(), within)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected frame {frame!r}")


class Tab:
    """A raw connection that records every frame it receives, in order."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, base: str, user: str = "alice", client_id: str = "tab", *, token: str | None = None) -> Tab:
        return cls(await open_raw(base, user, client_id, token=token))

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self.frames.append(json.loads(raw))
                self._changed.set()
        except websockets.ConnectionClosed:
            pass

    async def send(self, frame: dict[str, Any]) -> None:
        await send(self.ws, frame)

    async def mutate(self, name: str, args: dict[str, Any], request_id: str | None = None) -> dict[str, Any]:
        # unique for good: a reused id under the same clientId would (rightly) replay an old outcome
        rid = request_id or f"req-{uuid.uuid4().hex}"
        await self.send({"type": "mutate", "id": rid, "name": name, "args": args})
        return await self.wait(lambda f: f["type"] == "mutated" and f["id"] == rid)

    async def subscribe(self, sub_id: str, query: str, args: dict[str, Any]) -> dict[str, Any]:
        await self.send({"type": "subscribe", "id": sub_id, "query": query, "args": args})
        return await self.wait(lambda f: f.get("id") == sub_id and f["type"] in ("result", "error"))

    async def wait(self, predicate: Any, timeout: float = 20.0) -> dict[str, Any]:
        """The first recorded frame (past or future) for which predicate holds."""
        async with asyncio.timeout(timeout):
            seen = 0
            while True:
                for frame in self.frames[seen:]:
                    if predicate(frame):
                        return frame
                seen = len(self.frames)
                self._changed.clear()
                await self._changed.wait()

    async def wait_result(self, sub_id: str, predicate: Any, timeout: float = 20.0) -> dict[str, Any]:
        return await self.wait(lambda f: f["type"] == "result" and f["id"] == sub_id and predicate(f["value"]),
                               timeout)

    def deltas(self, sub_id: str, stream_id: str) -> list[dict[str, Any]]:
        return [f for f in self.frames
                if f["type"] == "delta" and f["id"] == sub_id and f["streamId"] == stream_id]

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
