"""Schedules as stored and shown: when one fires (a cron expression in a time zone, or an interval) and
what it does (a prompt sent to an agent in a thread, or a workflow run started)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

MAX_PER_USER = 100


class SendPrompt(msgspec.Struct, tag="send", tag_field="kind", rename="camel", kw_only=True, forbid_unknown_fields=True):
    """Send ``prompt`` in the thread as its owner; the agent answers it as it answers a send."""

    thread_id: str
    prompt: Annotated[str, msgspec.Meta(min_length=1, max_length=32_000)]
    agent_name: str | None = None


class StartWorkflow(msgspec.Struct, tag="workflow", tag_field="kind", rename="camel", kw_only=True,
                    forbid_unknown_fields=True):
    """Start a run of the app's workflow ``name`` with ``args``."""

    name: str
    args: Any = None


Action = SendPrompt | StartWorkflow


class Timing(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """Exactly one of ``cron`` (five fields, in ``timeZone``) and ``every_s`` (seconds, at least 1)."""

    cron: str | None = None
    time_zone: str = "UTC"
    every_s: Annotated[float, msgspec.Meta(ge=1, le=366 * 86400)] | None = None


class AppSchedule(msgspec.Struct, kw_only=True, frozen=True):
    """A schedule the app declares in its module's ``SCHEDULES``: every scheduler keeps the store as
    declared when it starts (added, changed, or removed when no longer declared). It belongs to
    ``user_id``: their thread is sent to, their run started, and it shows in their list."""

    name: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.-]{1,60}$")]
    user_id: str
    action: Action
    cron: str | None = None
    time_zone: str = "UTC"
    every_s: float | None = None

    @property
    def schedule_id(self) -> str:
        return f"app_{self.name}"

    @property
    def timing(self) -> Timing:
        return Timing(cron=self.cron, time_zone=self.time_zone, every_s=self.every_s)


class Definition(msgspec.Struct, rename="camel", kw_only=True):
    """What a schedule is (its changing state is kept beside it: ``Schedule``)."""

    schedule_id: str
    user_id: str
    name: str
    timing: Timing
    action: Action
    created_at: int


class Schedule(Definition, kw_only=True):
    """A schedule as shown: its definition and where it stands."""

    paused: bool
    next_at: int | None  # None while paused
    fired: int  # how many times it has fired
    last_fired_at: int | None = None
