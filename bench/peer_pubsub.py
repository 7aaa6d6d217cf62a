"""The pub/sub peer of bench.peers: a bare `websockets` server that forwards what Redis pub/sub
brings on a tab's channel to that tab, and nothing else. With an RQ job that streams the model and
publishes its deltas (bench.peers.floor_publish_job), it is the least a path of threadline's shape
(a worker pool under RQ, Redis between it and a web process, a WebSocket to the tab) can do: no
store, no send, no context, no live query.

A tab sends its channel's name first; every message published on ``floor:<name>`` is sent to it.

    PORT=... REDIS_URL=... python -m bench.peer_pubsub
"""

from __future__ import annotations

import asyncio
import os

import redis.asyncio as aioredis
import uvloop
from websockets.asyncio.server import ServerConnection, serve

PREFIX = "floor:"


async def main() -> None:
    tabs: dict[str, ServerConnection] = {}
    client = aioredis.Redis.from_url(os.environ.get("RQ_REDIS_URL") or os.environ["REDIS_URL"])
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.psubscribe(f"{PREFIX}*")

    async def forward() -> None:
        while True:
            message = await pubsub.get_message(timeout=None)
            if message is None:
                continue
            tab = tabs.get(message["channel"].decode()[len(PREFIX):])
            if tab is not None:
                await tab.send(message["data"].decode())

    async def handler(ws: ServerConnection) -> None:
        name = str(await ws.recv())
        tabs[name] = ws
        try:
            await ws.wait_closed()
        finally:
            tabs.pop(name, None)

    forwarding = asyncio.create_task(forward())
    async with serve(handler, "127.0.0.1", int(os.environ["PORT"]), ping_interval=None, max_size=None,
                     compression=None):
        await forwarding


if __name__ == "__main__":
    uvloop.run(main())
