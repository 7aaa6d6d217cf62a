"""Work that falls due at a time, taken by one of many takers (webhook deliveries, schedules): a sorted
set of members by when they are due, each with a hash that counts its takes. Taking one moves it a
lease ahead, so a taker that dies gives it back; what the taker then records is checked against its
take number (only the latest take's counts)."""

from __future__ import annotations

from dataclasses import dataclass

from threadline.shared.clock import now_ms
from threadline.shared.storage.client import redis_errors, text
from threadline.shared.storage.scripts import Scripts, lua

DUE_TAKE = lua(__file__, "due_take")


@dataclass(frozen=True, slots=True)
class DueSet:
    key: str  # the sorted set: member -> due time (ms)
    prefix: str  # a member's hash is prefix + member (in the set's slot)
    ready: tuple[str, str]  # (field, value): a member whose hash has not this is dropped, not taken
    shown: str  # the hash field returned with each member taken

    async def take(self, scripts: Scripts, lease_ms: int, limit: int = 100) -> list[tuple[str, int, int]]:
        """(member, its ``shown`` field, take number) of the members due now, each taken by this caller."""
        with redis_errors():
            flat = await scripts.run(DUE_TAKE, [self.key],
                                     [now_ms(), lease_ms, limit, self.prefix, *self.ready, self.shown])
        return [(text(flat[i]), int(flat[i + 1]), int(flat[i + 2])) for i in range(0, len(flat), 3)]
