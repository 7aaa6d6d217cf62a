"""Schedules against a real store: when they fire (cron in a time zone, intervals), that a slot is taken
by one taker and recorded by the latest take only, and what their owners may do."""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

import pytest

from threadline.shared.errors import BadRequest, NotFound
from threadline.shared.schedules import AppSchedule, Schedules, SendPrompt, StartWorkflow, Timing
from threadline.shared.schedules.timing import check_timing, next_after
from threadline.shared.threads import Store

pytestmark = pytest.mark.anyio


def ms(*args: int, tz: str = "UTC") -> int:
    return int(datetime.datetime(*args, tzinfo=ZoneInfo(tz)).timestamp() * 1000)  # type: ignore[misc]


def test_a_cron_expression_is_read_in_its_time_zone_across_a_clock_change() -> None:
    paris = Timing(cron="0 8 * * *", time_zone="Europe/Paris")
    assert next_after(paris, 0, ms(2026, 3, 28, 12)) == ms(2026, 3, 29, 8, tz="Europe/Paris")  # the day clocks move
    assert next_after(paris, 0, ms(2026, 3, 29, 8, tz="Europe/Paris")) == ms(2026, 3, 30, 8, tz="Europe/Paris")
    assert ms(2026, 3, 30, 8, tz="Europe/Paris") - ms(2026, 3, 29, 8, tz="Europe/Paris") == 86_400_000
    assert next_after(Timing(cron="*/15 * * * *"), 0, ms(2026, 1, 1, 10, 7)) == ms(2026, 1, 1, 10, 15)


def test_an_interval_counts_from_the_creation_and_skips_what_was_missed() -> None:
    every = Timing(every_s=10)
    assert next_after(every, 1000, 1000) == 11_000
    assert next_after(every, 1000, 10_999) == 11_000
    assert next_after(every, 1000, 11_000) == 21_000
    assert next_after(every, 1000, 95_000) == 101_000  # down for a while: the next slot after now


@pytest.mark.parametrize("timing", [Timing(), Timing(cron="* * * * *", every_s=5), Timing(cron="61 * * * *"),
                                    Timing(cron="* * * * * *"), Timing(cron="0 8 * * *", time_zone="Mars/Olympus")])
def test_bad_timings_are_refused(timing: Timing) -> None:
    with pytest.raises(BadRequest):
        check_timing(timing)


async def test_a_slot_is_taken_once_and_recorded_by_the_latest_take(store: Store) -> None:
    schedules = Schedules(store.redis, store.scripts)
    _, made, created = await schedules.create("alice", "tick", Timing(every_s=1),
                                              SendPrompt(thread_id="t1", prompt="hi"), schedule_id="sch_a")
    assert created and made.next_at is not None and not made.paused and made.fired == 0
    _, again, created = await schedules.create("alice", "tick", Timing(every_s=1),
                                               SendPrompt(thread_id="t1", prompt="hi"), schedule_id="sch_a")
    assert not created and again.created_at == made.created_at  # a resent create
    await store.redis.zadd("tl:{schedules}:due", {"sch_a": 0})  # due now
    ((sid, slot, take),) = await schedules.take_due(60_000)
    assert (sid, slot, take) == ("sch_a", made.next_at, 1)
    assert await schedules.take_due(60_000) == []  # leased to its taker
    await store.redis.zadd("tl:{schedules}:due", {"sch_a": 0})  # its taker died: the lease ran out
    ((_, slot2, take2),) = await schedules.take_due(60_000)
    assert (slot2, take2) == (slot, 2)
    assert await schedules.fired(made, 1, slot) is False  # the first taker, late: stale
    assert await schedules.fired(made, 2, slot) is True
    assert await schedules.fired(made, 2, slot) is False  # once
    now = await schedules.get("sch_a")
    assert now.fired == 1 and now.next_at is not None and now.next_at > slot and now.last_fired_at is not None


async def test_a_pause_lets_a_firing_under_way_end_once_and_a_resume_takes_the_pause_back(store: Store) -> None:
    """Paused while a scheduler has it taken (it may die in the middle of the action), the schedule is
    taken again once that lease runs out, so the firing ends and is recorded; then it is paused."""
    schedules = Schedules(store.redis, store.scripts)
    due = "tl:{schedules}:due"
    made = [(await schedules.create("alice", name, Timing(every_s=1), SendPrompt(thread_id="t1", prompt="hi"),
                                    schedule_id=f"sch_{name}"))[1] for name in ("p", "r")]
    await store.redis.zadd(due, {"sch_p": 0, "sch_r": 0})
    taken = {sid: (slot, take) for sid, slot, take in await schedules.take_due(60_000)}
    assert taken == {"sch_p": (made[0].next_at, 1), "sch_r": (made[1].next_at, 1)}
    for s in made:
        await schedules.change(s.schedule_id, "pause", "alice")
        shown = await schedules.get(s.schedule_id)
        assert shown.paused and shown.next_at is None  # what its owner sees at once
    await schedules.change("sch_r", "resume", "alice")
    assert not (await schedules.get("sch_r")).paused
    await store.redis.zadd(due, {"sch_p": 0})  # its taker died: the lease ran out
    ((sid, slot, take),) = await schedules.take_due(60_000)
    assert (sid, slot, take) == ("sch_p", made[0].next_at, 2)  # taken again, to end that firing
    assert await schedules.fired(made[0], 2, slot) and await schedules.fired(made[1], 1, taken["sch_r"][0])
    paused, resumed = await schedules.get("sch_p"), await schedules.get("sch_r")
    assert paused.paused and paused.fired == 1 and await store.redis.zscore(due, "sch_p") is None
    assert not resumed.paused and resumed.fired == 1 and resumed.next_at == await store.redis.zscore(due, "sch_r")
    await schedules.change("sch_p", "resume", "alice")
    assert (await schedules.get("sch_p")).next_at is not None


async def test_owners_pause_resume_and_delete_their_schedules_only(store: Store) -> None:
    schedules = Schedules(store.redis, store.scripts)
    v1, made, _ = await schedules.create("alice", "digest", Timing(cron="0 8 * * *", time_zone="Europe/Paris"),
                                         StartWorkflow(name="child_sum", args=[1]))
    with pytest.raises(NotFound):
        await schedules.change(made.schedule_id, "pause", "bob")
    v2 = await schedules.change(made.schedule_id, "pause", "alice")
    paused = await schedules.get(made.schedule_id)
    assert v2 > v1 and paused.paused and paused.next_at is None
    assert await schedules.take_due(0) == []
    await schedules.change(made.schedule_id, "resume", "alice")
    assert (await schedules.get(made.schedule_id)).next_at == made.next_at  # the same next 8:00 in Paris
    version, listed = await schedules.of_user("alice")
    assert [s.schedule_id for s in listed] == [made.schedule_id] and version >= v2
    assert (await schedules.of_user("bob"))[1] == []
    await schedules.change(made.schedule_id, "delete", "alice")
    assert (await schedules.of_user("alice"))[1] == []
    with pytest.raises(NotFound):
        await schedules.get(made.schedule_id)


async def test_the_apps_schedules_are_kept_as_declared(store: Store) -> None:
    schedules = Schedules(store.redis, store.scripts)
    digest = AppSchedule(name="digest", user_id="ops", cron="0 7 * * *", time_zone="Asia/Tokyo",
                         action=StartWorkflow(name="child_sum", args=[1, 2]))
    ping = AppSchedule(name="ping", user_id="ops", every_s=3600, action=SendPrompt(thread_id="t1", prompt="ping"))
    await schedules.declare([digest, ping])
    await schedules.declare([digest, ping])  # a second scheduler starting: nothing changes
    _, listed = await schedules.of_user("ops")
    assert [(s.schedule_id, s.name) for s in listed] == [("app_digest", "digest"), ("app_ping", "ping")]
    await store.redis.hset("tl:{schedules}:s:app_digest", "fired", 5)
    changed = AppSchedule(name="ping", user_id="ops", every_s=60, action=SendPrompt(thread_id="t1", prompt="ping"))
    await schedules.declare([digest, changed])
    _, listed = await schedules.of_user("ops")
    assert [(s.schedule_id, s.timing.every_s, s.fired) for s in listed] == [("app_digest", None, 5), ("app_ping", 60, 0)]
    await schedules.declare([])
    assert (await schedules.of_user("ops"))[1] == []
