"""The bare broadcast peer of bench.peers: a `websockets` server that sends every message a client
sends to every connection (``websockets.broadcast``), and nothing else: the floor of fan-out in Python.

    PORT=... python -m bench.peer_broadcast
"""

from __future__ import annotations

import asyncio
import os

import uvloop
from websockets.asyncio.server import ServerConnection, broadcast, serve


async def main() -> None:
    connections: set[ServerConnection] = set()

    async def handler(ws: ServerConnection) -> None:
        connections.add(ws)
        try:
            async for message in ws:
                broadcast(connections, message)
        finally:
            connections.discard(ws)

    async with serve(handler, "127.0.0.1", int(os.environ["PORT"]), ping_interval=None, max_size=None,
                     compression=None):
        await asyncio.Future()


if __name__ == "__main__":
    uvloop.run(main())
