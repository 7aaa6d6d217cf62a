"""Raw WebSocket helpers for protocol tests."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from tests.conftest import token_for


async def recv(ws: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def send(ws: ClientConnection, frame: dict[str, Any]) -> None:
    await ws.send(json.dumps(frame))


async def open_raw(base: str, user: str = "alice", client_id: str = "raw-tab", **kw: Any) -> ClientConnection:
    """A connected raw client (the `connected` frame already read)."""
    ws = await websockets.connect(base.replace("http", "ws") + "/ws", max_size=None, **kw)
    await send(ws, {"type": "connect", "protocol": 1, "token": token_for(user), "clientId": client_id})
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
