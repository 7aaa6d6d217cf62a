"""The peer for the fan-out benchmark: python-socketio with AsyncRedisManager under uvicorn.

A client emits "publish" with a payload; the server broadcasts it as "result" to
every connected client through Redis, as a multi-process Socket.IO deployment does.

    REDIS_URL=... PORT=... python -m bench.peer_socketio
"""

from __future__ import annotations

import os

import socketio
import uvicorn

manager = socketio.AsyncRedisManager(os.environ["REDIS_URL"])
sio = socketio.AsyncServer(async_mode="asgi", client_manager=manager, cors_allowed_origins="*",
                           ping_interval=25, ping_timeout=20)
app = socketio.ASGIApp(sio)


@sio.on("publish")
async def publish(sid: str, data: object) -> None:
    await sio.emit("result", data)


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning",
                ws="websockets-sansio")
