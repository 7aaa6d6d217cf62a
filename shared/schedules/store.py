"""Schedules in Redis (all in the ``{schedules}`` slot), and the two steps of a firing.

A scheduler takes a due schedule (``take_due``: one taker; due again a lease later in case that taker
dies), does its action for the slot it was due at, idempotently by construction (the action is keyed
by the schedule and the slot: workers.schedules), then records the firing and the next slot
(``fired``, which only the latest take may do). So each slot fires once in effect, across restarts
and any number of schedulers; slots missed while no scheduler ran are made up by one firing. A pause
lets a firing under way end (its taker may have died in the middle of the action: another does it again)
and takes effect when it is recorded.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from collections.abc import Sequence
from typing import Any

import msgspec

from threadline.shared import keys
from threadline.shared.clock import now_ms
from threadline.shared.errors import NotFound
from threadline.shared.schedules.records import (
    MAX_PER_USER,
    Action,
    AppSchedule,
    Definition,
    Schedule,
    Timing,
)
from threadline.shared.schedules.timing import check_timing, next_after
from threadline.shared.storage.client import Client, redis_errors, text
from threadline.shared.storage.due import DueSet
from threadline.shared.storage.scripts import Scripts, lua

SCHEDULE_PUT = lua(__file__, "schedule_put")
SCHEDULE_STATE = lua(__file__, "schedule_state")
SCHEDULE_FIRED = lua(__file__, "schedule_fired")

DUE = DueSet(keys.SCHEDULES_DUE, keys.SCHEDULE_PREFIX, ("paused", "0"), "nextAt")
_definition = msgspec.json.Decoder(Definition)


def schedule_id_for(digest: str) -> str:
    """The id a guarded create (a resent request) always gets."""
    return "sch_" + hashlib.sha256(digest.encode()).hexdigest()[:20]


class Schedules:
    def __init__(self, redis: Client, scripts: Scripts) -> None:
        self._redis = redis
        self._scripts = scripts

    def _keys(self, schedule_id: str, user_id: str) -> list[str]:
        return [keys.schedule(schedule_id), keys.SCHEDULES_DUE, keys.user_schedules(user_id),
                keys.user_schedules_version(user_id)]

    async def create(self, user_id: str, name: str, timing: Timing, action: Action, *,
                     schedule_id: str | None = None) -> tuple[int, Schedule, bool]:
        """(the user's list version, the schedule, whether it is new); a ``schedule_id`` that exists
        already is the schedule it names (a resent request), left as it is."""
        check_timing(timing)
        now = now_ms()
        sid = schedule_id or "sch_" + secrets.token_hex(10)
        definition = Definition(schedule_id=sid, user_id=user_id, name=name, timing=timing, action=action,
                                created_at=now)
        with redis_errors():
            created, version = await self._scripts.run(
                SCHEDULE_PUT, self._keys(sid, user_id),
                [sid, user_id, msgspec.json.encode(definition), now, next_after(timing, now, now),
                 keys.user_schedules_channel(user_id), MAX_PER_USER])
        return int(version), await self.get(sid, user_id), bool(created)

    async def get(self, schedule_id: str, user_id: str | None = None) -> Schedule:
        """The schedule (NotFound when missing or, with ``user_id``, not theirs)."""
        with redis_errors():
            raw = await self._redis.hgetall(keys.schedule(schedule_id))
        if not raw or (user_id is not None and text(raw.get(b"userId")) != user_id):
            raise NotFound(f"schedule {schedule_id} not found")
        return _view(raw)

    async def of_user(self, user_id: str) -> tuple[int, list[Schedule]]:
        """(version, the user's schedules, oldest first)."""
        with redis_errors():
            ids = await self._redis.zrange(keys.user_schedules(user_id), 0, -1)
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.get(keys.user_schedules_version(user_id))
                for sid in ids:
                    pipe.hgetall(keys.schedule(text(sid)))
                version, *found = await pipe.execute()
        return int(version or 0), [_view(raw) for raw in found if raw]

    async def change(self, schedule_id: str, op: str, caller: str | None) -> int:
        """Pause, resume or delete (``op``) the schedule of ``caller`` (None: anyone's); the list's version."""
        schedule = await self.get(schedule_id, caller)
        now = now_ms()
        with redis_errors():
            return int(await self._scripts.run(
                SCHEDULE_STATE, self._keys(schedule_id, schedule.user_id),
                [schedule_id, op, caller or "", next_after(schedule.timing, schedule.created_at, now),
                 keys.user_schedules_channel(schedule.user_id)]))

    async def declare(self, declared: Sequence[AppSchedule]) -> None:
        """Keep the app's schedules as ``declared``: new ones added, changed ones made anew (their
        count starts again), those no longer declared removed."""
        wanted = {d.schedule_id: d for d in declared}
        with redis_errors():
            known = {text(m) for m in await self._redis.smembers(keys.APP_SCHEDULES)}
        for sid in known - wanted.keys():
            with contextlib.suppress(NotFound):
                await self.change(sid, "delete", None)
            with redis_errors():
                await self._redis.srem(keys.APP_SCHEDULES, sid)
        for sid, d in wanted.items():
            check_timing(d.timing)
            try:
                now = await self.get(sid)
            except NotFound:
                now = None
            if now is not None and (now.user_id, now.name, now.timing, now.action) != (d.user_id, d.name, d.timing,
                                                                                        d.action):
                await self.change(sid, "delete", None)
                now = None
            if now is None:
                await self.create(d.user_id, d.name, d.timing, d.action, schedule_id=sid)
            with redis_errors():
                await self._redis.sadd(keys.APP_SCHEDULES, sid)

    async def take_due(self, lease_ms: int, limit: int = 100) -> list[tuple[str, int, int]]:
        """(scheduleId, slot, take) of the schedules due now, each taken by this caller only."""
        return await DUE.take(self._scripts, lease_ms, limit)

    async def fired(self, schedule: Schedule, take: int, slot: int) -> bool:
        """Record the firing of ``slot`` and the next slot (one later than now: missed slots are not
        made up one by one); False when the take was stale."""
        now = now_ms()
        with redis_errors():
            return bool(await self._scripts.run(
                SCHEDULE_FIRED, [keys.schedule(schedule.schedule_id), keys.SCHEDULES_DUE,
                                 keys.user_schedules_version(schedule.user_id)],
                [schedule.schedule_id, take, slot, next_after(schedule.timing, schedule.created_at, max(now, slot)),
                 now, keys.user_schedules_channel(schedule.user_id)]))


def _view(raw: dict[Any, Any]) -> Schedule:
    paused = raw.get(b"paused") == b"1" or raw.get(b"pausing") == b"1"  # (pausing: a firing under way ends)
    last = raw.get(b"lastFiredAt")
    return Schedule(**msgspec.structs.asdict(_definition.decode(raw[b"definition"])), paused=paused,
                    next_at=None if paused else int(raw[b"nextAt"]), fired=int(raw.get(b"fired", 0)),
                    last_fired_at=int(last) if last else None)
