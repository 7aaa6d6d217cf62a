"""When a schedule fires next: a cron expression read in its time zone (croniter, the library RQ's own
cron uses), or an interval counted from its creation."""

from __future__ import annotations

import datetime
import math
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from threadline.shared.errors import BadRequest
from threadline.shared.schedules.records import Timing


def check_timing(timing: Timing) -> None:
    if (timing.cron is None) == (timing.every_s is None):
        raise BadRequest("a schedule has exactly one of `cron` and `everyS`")
    try:
        ZoneInfo(timing.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadRequest(f"unknown time zone {timing.time_zone!r} (an IANA name, e.g. Europe/Paris)") from None
    if timing.cron is not None and (len(timing.cron.split()) != 5 or not croniter.is_valid(timing.cron)):
        raise BadRequest(f"`cron` must be a cron expression of five fields (minute hour day month weekday), "
                         f"not {timing.cron!r}")


def next_after(timing: Timing, created_at: int, after_ms: int) -> int:
    """The first firing time (ms) later than ``after_ms``."""
    if timing.every_s is not None:
        every = int(timing.every_s * 1000)
        return created_at + max(1, math.floor((after_ms - created_at) / every) + 1) * every
    assert timing.cron is not None
    start = datetime.datetime.fromtimestamp(after_ms / 1000, ZoneInfo(timing.time_zone))
    nxt: datetime.datetime = croniter(timing.cron, start).get_next(datetime.datetime)
    return int(nxt.timestamp() * 1000)
