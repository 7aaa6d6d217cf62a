"""Presence: who is viewing a thread and who is typing, across web processes.

Ephemeral: never stored as messages, each entry ends by itself. A connection says it is there (and
typing) and says it again while it stays (``PRESENCE_MS`` apart at most); one that goes away without
a word (a closed laptop, a killed process) drops out when its time is up, at the latest at the next
change anyone makes. Entries are per connection (``userId|connection``), shown per user.
"""

from __future__ import annotations

import msgspec

from threadline.shared import keys
from threadline.shared.clock import now_ms
from threadline.shared.storage.client import Client, redis_errors, text
from threadline.shared.storage.scripts import Scripts, lua

PRESENCE_SET = lua(__file__, "presence_set")
PRESENCE_MS = 30_000  # how long a connection counts as there after it last said so
TYPING_MS = 6_000  # how long "typing" lasts after the last keystroke a client reported


class Viewer(msgspec.Struct, rename="camel", kw_only=True):
    user_id: str
    connections: int  # tabs of this user on the thread
    typing: bool = False
    typing_for_ms: int = 0  # how much longer, as of the result: a client stops showing it then


class Presence(msgspec.Struct, rename="camel", kw_only=True):
    thread_id: str
    viewers: list[Viewer]


def member(user_id: str, connection: str) -> str:
    return f"{user_id}|{connection}"


class PresenceStore:
    def __init__(self, redis: Client, scripts: Scripts) -> None:
        self._redis = redis
        self._scripts = scripts

    async def set(self, thread_id: str, user_id: str, connection: str, *, typing: bool | None = None) -> int:
        """The connection is viewing the thread (for PRESENCE_MS), typing or not (None: as it was);
        the presence version."""
        now = now_ms()
        typing_until = -1 if typing is None else (now + TYPING_MS if typing else 0)
        return await self._run(thread_id, member(user_id, connection), now, now + PRESENCE_MS, typing_until)

    async def leave(self, thread_id: str, user_id: str, connection: str) -> int:
        """The connection left the thread."""
        return await self._run(thread_id, member(user_id, connection), now_ms(), 0, 0)

    async def _run(self, thread_id: str, who: str, now: int, until: int, typing_until: int) -> int:
        with redis_errors():
            return int(await self._scripts.run(
                PRESENCE_SET, [keys.thread(thread_id), keys.presence(thread_id), keys.typing(thread_id),
                               keys.presence_version(thread_id)],
                [keys.presence_channel(thread_id), now, who, until, typing_until]))

    async def list(self, thread_id: str) -> tuple[int, Presence]:
        """(version, who is there now): each user once, typing when any of their connections is."""
        now = now_ms()
        with redis_errors():
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.get(keys.presence_version(thread_id))
                pipe.zrangebyscore(keys.presence(thread_id), f"({now}", "+inf")
                pipe.zrangebyscore(keys.typing(thread_id), f"({now}", "+inf", withscores=True)
                version, there, typing = await pipe.execute()
        viewers: dict[str, Viewer] = {}
        for who in there:
            user = text(who).rpartition("|")[0]
            viewer = viewers.setdefault(user, Viewer(user_id=user, connections=0))
            viewer.connections += 1
        for who, until in typing:
            typist = viewers.get(text(who).rpartition("|")[0])
            if typist is not None:
                typist.typing = True
                typist.typing_for_ms = max(typist.typing_for_ms, int(until) - now)
        return int(version or 0), Presence(thread_id=thread_id, viewers=sorted(viewers.values(), key=lambda v: v.user_id))
