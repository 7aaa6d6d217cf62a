"""The usage ledger against a real Valkey: totals by period, model, agent and kind, costs from a
price table, period boundaries, the CSV export, retention."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import msgspec
import pytest

from threadline.shared import keys
from threadline.shared.errors import BadRequest
from threadline.shared.threads import Store
from threadline.shared.usage.ledger import (
    Price,
    UsageEntry,
    UsageLedger,
    check_period,
    period_of,
    to_csv,
)

pytestmark = pytest.mark.anyio
PRICES = {"gpt-x": Price(input=2.5, output=10.0, cached_input=1.25), "cheap": Price(input=0.1)}


def at(*ymdhms: int) -> int:
    return int(datetime(*ymdhms, tzinfo=UTC).timestamp() * 1000)


def test_periods_and_their_boundaries() -> None:
    last = at(2026, 11, 30, 23, 59, 59) + 999
    first = at(2026, 12, 1)
    assert (period_of(last), period_of(first)) == ("2026-11", "2026-12")
    assert (period_of(last, "day"), period_of(first, "day")) == ("2026-11-30", "2026-12-01")
    assert period_of(at(2026, 12, 31, 12), "week") == "2026-W53" and period_of(at(2027, 1, 4), "week") == "2027-W01"
    for bad in ("2026-13-1", "2026-13", "2026-W60", "2026-02-30", "26-11"):
        with pytest.raises(BadRequest):
            check_period(bad)
    assert check_period("2026-W53") == "2026-W53"


def test_costs_from_the_price_table() -> None:
    # 1,000 input of which 400 cached, 200 output: 600 x 2.5 + 400 x 1.25 + 200 x 10 micro-dollars
    assert PRICES["gpt-x"].cost_micros(1000, 200, 400) == 1500 + 500 + 2000
    assert PRICES["cheap"].cost_micros(1_000_000, 5) == 100_000  # ten cents for a million input tokens


async def test_totals_by_period_model_agent_and_kind(store: Store) -> None:
    ledger = UsageLedger(store.redis, store.scripts, prices=PRICES)
    calls = [
        UsageEntry(at=at(2026, 11, 30, 23, 59), user_id="ann", agent="helper", model="gpt-x", input=1000,
                   output=200, cached=400, reasoning=50),
        UsageEntry(at=at(2026, 11, 30, 23, 59, 59), user_id="ann", agent="helper", model="cheap", input=300,
                   kind="summary"),
        UsageEntry(at=at(2026, 12, 1, 0, 0, 1), user_id="ann", agent="helper", model="gpt-x", input=10, output=1),
        UsageEntry(at=at(2026, 11, 2), user_id="bob", agent="other", model="unpriced", input=7, output=3),
    ]
    await asyncio.gather(*(ledger.record(c) for c in calls))
    _, nov = await ledger.summary("ann", "2026-11")
    assert (nov.totals.calls, nov.totals.input, nov.totals.output, nov.totals.cached, nov.totals.reasoning) == (
        2, 1300, 200, 400, 50)
    assert nov.totals.cost_micros == 4000 + 30
    assert nov.by_model["gpt-x"].cost_micros == 4000 and nov.by_model["cheap"].input == 300
    assert nov.by_kind["summary"].calls == 1 and nov.by_kind["step"].calls == 1
    assert nov.by_agent["helper"].calls == 2
    _, dec = await ledger.summary("ann", "2026-12")
    assert (dec.totals.calls, dec.totals.cost_micros) == (1, 25 + 10)  # the next month's call is its own
    _, app = await ledger.summary(None, "2026-11")  # the app's parts of two partitions, added up
    assert keys.partition("ann") != keys.partition("bob")
    assert app.totals.calls == 3 and app.by_agent["other"].input == 7 and app.totals.cost_micros == 4030
    assert await ledger.users("2026-11") == [("ann", 4030), ("bob", 0)]


async def test_entries_of_a_period_and_their_csv(store: Store) -> None:
    ledger = UsageLedger(store.redis, store.scripts, prices=PRICES, period="day")
    now = int(time.time() * 1000)
    await ledger.record(UsageEntry(at=now, user_id="dee", thread_id="t1", agent="a", model="gpt-x", input=1000,
                                   output=200, cached=400))
    await ledger.record(UsageEntry(at=now + 1, user_id="dee", model="cheap", input=10, kind="embedding"))
    entries = await ledger.entries("dee")
    assert [e.model for e in entries] == ["gpt-x", "cheap"] and entries[0].cost_micros == 4000
    assert await ledger.entries("dee", period_of(now - 86_400_000, "day")) == []  # yesterday: none
    csv = to_csv(entries).splitlines()
    assert csv[0] == "at,userId,threadId,agent,provider,model,kind,input,output,cached,reasoning,costUsd"
    assert csv[1].endswith(",dee,t1,a,,gpt-x,step,1000,200,400,0,0.004000")


async def test_retention_trims_entries_not_totals(store: Store) -> None:
    ledger = UsageLedger(store.redis, store.scripts)
    old = UsageEntry(at=at(2020, 1, 5), user_id="cy", model="m", input=5)
    await store.redis.xadd(keys.usage_log("cy"), {"e": msgspec.json.encode(old)}, id=f"{old.at}-0")  # written then
    await ledger.record(old)  # (counts in 2020's totals)
    await ledger.record(UsageEntry(at=int(time.time() * 1000), user_id="cy", model="m", input=6))
    assert len(await store.redis.xrange(keys.usage_log("cy"))) == 3
    assert await ledger.trim(keep_days=400) == 1
    assert len(await store.redis.xrange(keys.usage_log("cy"))) == 2
    assert (await ledger.summary("cy", "2020-01"))[1].totals.input == 5
