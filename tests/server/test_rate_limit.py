"""Rate-limit rules against a real Valkey: token buckets and fixed windows, per user, agent, team
and globally, all rules taken together or none, a correct retryAfterMs, settling a reservation."""

from __future__ import annotations

import time

import pytest

from threadline.shared.errors import RateLimited
from threadline.shared.threads import Store
from threadline.shared.usage.limits import Limit, Limits, Who

pytestmark = pytest.mark.anyio


async def refused(limits: Limits, who: Who, on: str = "messages", cost: int = 1) -> RateLimited:
    with pytest.raises(RateLimited) as caught:
        await limits.take(on, who, cost)  # type: ignore[arg-type]
    return caught.value


async def test_a_bucket_lets_a_burst_through_then_says_when(store: Store) -> None:
    limits = Limits(store.redis, store.scripts, [Limit(name="sends", limit=6, period_s=60, burst=3)])
    for _ in range(3):
        await limits.take("messages", Who("alice"))
    error = await refused(limits, Who("alice"))
    assert error.retry_after_ms is not None and 9_000 < error.retry_after_ms <= 10_000  # one token: 10 s
    await limits.take("messages", Who("bob"))  # per user


async def test_a_fixed_window_resets_at_its_end(store: Store) -> None:
    limits = Limits(store.redis, store.scripts, [Limit(name="w", limit=2, period_s=1, kind="fixed_window")])
    for attempt in range(5):
        time.sleep(1.01 - time.time() % 1)  # the start of a window: the three takes below fit in it
        window, who = int(time.time()), Who(f"alice{attempt}")
        await limits.take("messages", who)
        await limits.take("messages", who)
        try:
            await limits.take("messages", who)
        except RateLimited as exc:
            error = exc
            break
        # let through: only where the window ended before the third take did (two takes can outlast a
        # 1 s window on a loaded machine); then again, in a window of its own
        assert int(time.time()) != window, "a third take within one 1 s window of a limit of 2 was let through"
    else:
        raise AssertionError("no attempt took three within one window")
    assert error.retry_after_ms is not None and 0 < error.retry_after_ms <= 1000
    time.sleep(error.retry_after_ms / 1000 + 0.01)
    await limits.take("messages", who)


async def test_scopes_agents_and_all_or_none(store: Store) -> None:
    rules = [Limit(name="per-agent", limit=2, period_s=60, per="agent", agents=("pricey",)),
             Limit(name="team", limit=3, period_s=60, per="team"),
             Limit(name="everyone", limit=5, period_s=60, per="global")]
    limits = Limits(store.redis, store.scripts, rules)
    await limits.take("messages", Who("a", "pricey", ("blue",)))
    await limits.take("messages", Who("b", "pricey", ("blue",)))
    assert "per-agent" in (await refused(limits, Who("c", "pricey"))).message  # any user of that agent
    await limits.take("messages", Who("c", "cheap", ("blue",)))  # another agent: not counted there
    assert "`team`" in (await refused(limits, Who("d", "cheap", ("blue",)))).message
    await limits.take("messages", Who("e", "cheap", ("red",)))
    # four taken globally; a refusal by one rule took nothing from the others
    await limits.take("messages", Who("f", "cheap"))
    assert "`everyone`" in (await refused(limits, Who("g", "cheap"))).message


async def test_token_reservations_settle_on_real_usage(store: Store) -> None:
    limits = Limits(store.redis, store.scripts, [Limit(name="tokens", on="tokens", limit=1000, period_s=3600)])
    await limits.take("tokens", Who("alice"), 800)  # an estimate
    await limits.settle("tokens", Who("alice"), 100 - 800)  # it used 100: 700 come back
    await limits.take("tokens", Who("alice"), 850)
    error = await refused(limits, Who("alice"), "tokens", 200)
    assert error.retry_after_ms is not None and error.retry_after_ms > 0
    assert "more than" in (await refused(limits, Who("bob"), "tokens", 5000)).message  # never fits
    await limits.take("messages", Who("alice"))  # no message rule: nothing to take


async def test_a_concurrency_cap_holds_places_and_gives_them_back(store: Store) -> None:
    import asyncio

    limits = Limits(store.redis, store.scripts, [Limit(name="two-at-once", limit=2, kind="concurrency")])
    who = Who("alice", "a")
    held = asyncio.Event()
    release = asyncio.Event()

    async def reply(holder: str, lease_ms: int = 30_000) -> None:
        async with limits.reply_slot(who, holder, lease_ms):
            held.set()
            await release.wait()

    first = asyncio.create_task(reply("job-1"))
    second = asyncio.create_task(reply("job-2"))
    await held.wait()
    await asyncio.sleep(0.1)
    error = await refused_room(limits, who)
    assert "two-at-once" in error.message and error.retry_after_ms == 1000
    await limits.room(Who("bob", "a"))  # another user's replies are their own
    third = asyncio.create_task(reply("job-3"))  # waits for a place
    await asyncio.sleep(0.5)
    assert not third.done()
    release.set()
    await asyncio.gather(first, second, third)
    await limits.room(who)  # every place given back


async def test_a_dead_workers_place_lapses(store: Store) -> None:
    limits = Limits(store.redis, store.scripts, [Limit(name="one", limit=1, kind="concurrency")])
    who = Who("carol")
    await limits._hold(who, "killed-job", 300)  # taken, never given back (its process died)
    await refused_room(limits, who)
    time.sleep(0.4)
    await limits.room(who)


async def refused_room(limits: Limits, who: Who) -> RateLimited:
    with pytest.raises(RateLimited) as caught:
        await limits.room(who)
    return caught.value


async def test_a_check_takes_nothing(store: Store) -> None:
    limits = Limits(store.redis, store.scripts, [Limit(name="tokens", on="tokens", limit=1000, period_s=3600)])
    for _ in range(5):
        await limits.take("tokens", Who("alice"), 900, check=True)
    await limits.take("tokens", Who("alice"), 900)
    with pytest.raises(RateLimited):
        await limits.take("tokens", Who("alice"), 900, check=True)


async def test_rules_in_several_partitions_are_reserved_in_order_and_given_back(store: Store) -> None:
    """Rules of a user and of the app live in two partitions: a refusal by either leaves the other as
    it was, and names the rule that makes the caller wait longest."""
    from threadline.shared import keys

    rules = [Limit(name="mine", limit=3, period_s=60), Limit(name="all", limit=2, period_s=600, per="global")]
    limits = Limits(store.redis, store.scripts, rules)
    assert keys.partition("ann") != keys.partition("*")
    await limits.take("messages", Who("ann"))
    await limits.take("messages", Who("bob"))
    error = await refused(limits, Who("ann"))  # the app's rule is full; ann's own is not
    assert "`all`" in error.message and error.retry_after_ms is not None and error.retry_after_ms > 60_000
    state = (await limits.status(Who("ann"))).rules
    assert [(r.name, r.remaining) for r in state] == [("mine", 2), ("all", 0)]  # ann's one was given back

    caps = Limits(store.redis, store.scripts, [Limit(name="own", limit=2, kind="concurrency"),
                                                Limit(name="app", limit=1, kind="concurrency", per="global")])
    await caps._hold(Who("cy"), "job-1", 30_000)
    with pytest.raises(RateLimited):
        await caps._hold(Who("cy"), "job-2", 30_000)  # the app's place is taken
    assert await store.redis.zrange(keys.rate_limit_rule("own", "cy"), 0, -1) == [b"job-1"]  # job-2's was given back
