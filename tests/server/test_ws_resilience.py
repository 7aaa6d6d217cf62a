"""Slow consumers are disconnected; dead peers are found by WebSocket pings."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
import websockets

from tests.conftest import admin_headers, web_process
from tests.support.wsutil import open_raw, recv, send, until

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def tight_web(redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {"WS_SEND_QUEUE": "8", "WS_PING_INTERVAL_S": "0.5", "WS_PING_TIMEOUT_S": "0.5",
           "RATE_LIMIT_SENDS_PER_MINUTE": "0"}
    yield from web_process(redis_server, tmp_path_factory, "tight", env)


def sessions(base: str) -> int:
    return int(httpx.get(f"{base}/api/stats", headers=admin_headers()).json()["sessions"])


async def wait_sessions(base: str, count: int, timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while sessions(base) != count:
            await asyncio.sleep(0.1)


async def test_a_client_that_stops_reading_is_disconnected(tight_web: str, redis_url: str) -> None:
    writer = await open_raw(tight_web, client_id="writer")
    await send(writer, {"type": "mutate", "id": "c", "name": "threads.create", "args": {}})
    tid = (await until(writer, lambda f: f["type"] == "mutated"))["value"]["threadId"]
    big = "lorem ipsum " * 900  # ~10 KB a message, ~1 MB a page of 100
    slow = await open_raw(tight_web, client_id="slow", max_queue=1)
    await send(slow, {"type": "subscribe", "id": "s", "query": "messages.list",
                      "args": {"threadId": tid, "paginationOpts": {"numItems": 100}}})
    await wait_sessions(tight_web, 2)
    slow.transport.pause_reading()  # a tab that stopped reading
    dropped = False
    for i in range(200):
        await send(writer, {"type": "mutate", "id": f"m{i}", "name": "messages.send",
                            "args": {"threadId": tid, "prompt": f"{i} {big}", "generate": False}})
        await until(writer, lambda f: f["type"] == "mutated")
        if sessions(tight_web) == 1:
            dropped = True
            break
    assert dropped, "the server kept a client that does not read"
    await send(writer, {"type": "ping", "t": 1})
    assert (await until(writer, lambda f: f["type"] == "pong"))["t"] == 1
    slow.transport.resume_reading()
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await asyncio.wait_for(slow.recv(), 10)
    await writer.close()


async def test_a_dead_peer_is_found_by_pings(tight_web: str, redis_url: str) -> None:
    ws = await open_raw(tight_web, client_id="ghost")
    await send(ws, {"type": "subscribe", "id": "s", "query": "threads.list", "args": {}})
    await recv(ws)
    await wait_sessions(tight_web, 1)
    ws.transport.pause_reading()  # no more pongs, as from a peer that vanished
    await wait_sessions(tight_web, 0, timeout=10)
    ws.transport.abort()
