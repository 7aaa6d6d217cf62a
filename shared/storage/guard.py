"""Guarded writes: a request's change and the record that it happened, in one atomic step.

A mutation that a client may send again (after a reconnect, a killed server, a
restarted Redis) carries a ``Guard``. Each write script it runs gets a record
key in the slot of the keys it writes; the script's guarded variant stores its
own result there before it returns, and a second run with the same record
returns that result without writing again. So after any crash either both the
change and its record exist or neither does, and a resend completes what the
first attempt began instead of doing it twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from threadline.shared import keys
from threadline.shared.storage.client import Client, redis_errors


@dataclass(frozen=True, slots=True)
class Record:
    """Where one guarded write keeps its result, and for how long."""

    key: str
    ttl_s: int


@dataclass(frozen=True, slots=True)
class Guard:
    """The identity of one request, from which each of its writes gets a record."""

    digest: str
    ttl_s: int

    def thread(self, thread_id: str, step: str = "") -> Record:
        """The record of a write in ``thread_id`` (``step`` tells apart several in one thread)."""
        return Record(keys.write_record(self.digest, thread_id=thread_id, step=step), self.ttl_s)

    def namespace(self, namespace: str) -> Record:
        """The record of a write in a namespace's items (shared.memories)."""
        return Record(keys.namespace_write_record(self.digest, namespace), self.ttl_s)


def in_thread(guard: Guard | None, thread_id: str, step: str = "") -> Record | None:
    """The record of a write in ``thread_id`` for ``guard``, or None for an unguarded write."""
    return guard.thread(thread_id, step) if guard is not None else None


def in_namespace(guard: Guard | None, namespace: str) -> Record | None:
    """The record of a write in a namespace's items for ``guard``, or None for an unguarded write."""
    return guard.namespace(namespace) if guard is not None else None


async def recorded(redis: Client, record: Record | None) -> bool:
    """Whether the write of ``record`` already happened (a resend finishing the first attempt)."""
    if record is None:
        return False
    with redis_errors():
        return bool(await redis.hexists(record.key, "r"))


# The guarded variant of a script: its first key and argument are the record and its TTL.
GUARD_HEAD = """local __record = table.remove(KEYS, 1)
local __ttl = table.remove(ARGV, 1)
local __done = redis.call('HGET', __record, 'r')
if __done then return cmsgpack.unpack(__done) end
local __result = (function()
"""
GUARD_TAIL = """
end)()
if type(__result) == 'table' and __result.err then return __result end
redis.call('HSET', __record, 'r', cmsgpack.pack(__result))
redis.call('EXPIRE', __record, __ttl)
return __result
"""
