"""The usage ledger: every model call's tokens (and cost, with the app's prices), per user.

Each call is one entry in the user's ledger (a Redis Stream) and counts, in the same
Lua step, in the user's totals for the billing period and in the app's, each also by
model, by agent and by kind (``step``: a reply's model call; ``summary``; ``embedding``).
Prices come from the app module's ``PRICES`` ({model: Price}, dollars per million
tokens); costs are kept in micro-dollars, so totals stay exact integers.

Billing periods are calendar months in UTC by default (``2026-11``); ``USAGE_PERIOD``
chooses ``week`` (ISO week, ``2026-W48``) or ``day`` (``2026-11-30``).
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any, Literal

import msgspec

from threadline.shared import keys
from threadline.shared.app_module import declared_map
from threadline.shared.clock import now_ms
from threadline.shared.config import Settings
from threadline.shared.errors import BadRequest
from threadline.shared.storage import partitions
from threadline.shared.storage.client import Client, as_bytes, redis_errors, text
from threadline.shared.storage.scripts import Scripts, lua

USAGE_RECORD = lua(__file__, "usage_record")

Period = Literal["month", "week", "day"]
Kind = Literal["step", "summary", "embedding", "title"]
FIELDS = ("calls", "input", "output", "cached", "reasoning", "costMicros")
SLACK_MS = 60_000  # an entry is written this long after its ``at`` at most


class Price(msgspec.Struct, frozen=True, kw_only=True):
    """Dollars per million tokens; ``cached_input`` for prompt tokens served from the provider's
    cache (None: the input price)."""

    input: float
    output: float = 0.0
    cached_input: float | None = None

    def cost_micros(self, input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> int:
        """The cost in micro-dollars (a dollar per million tokens is a micro-dollar per token)."""
        cached = min(cached_tokens, input_tokens)
        cached_price = self.input if self.cached_input is None else self.cached_input
        return round((input_tokens - cached) * self.input + cached * cached_price + output_tokens * self.output)


@cache
def prices_of(app_module: str) -> dict[str, Price]:
    """The app's price table (``PRICES`` in its module), by model name."""
    return declared_map(app_module, "PRICES", Price)


def period_of(at_ms: int, period: Period = "month") -> str:
    """The billing period a moment falls in (UTC)."""
    day = datetime.fromtimestamp(at_ms / 1000, UTC)
    if period == "day":
        return day.strftime("%Y-%m-%d")
    if period == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return day.strftime("%Y-%m")


def check_period(name: str) -> str:
    """A period name as a client may give it (BadRequest otherwise)."""
    _bounds(name)
    return name


class UsageEntry(msgspec.Struct, rename="camel", kw_only=True):
    at: int
    user_id: str
    thread_id: str = ""
    agent: str = ""
    provider: str = ""
    model: str = ""
    kind: Kind = "step"
    input: int = 0
    output: int = 0
    cached: int = 0
    reasoning: int = 0
    cost_micros: int = 0


class Totals(msgspec.Struct, rename="camel", kw_only=True):
    calls: int = 0
    input: int = 0
    output: int = 0
    cached: int = 0
    reasoning: int = 0
    cost_micros: int = 0


class UsageSummary(msgspec.Struct, rename="camel", kw_only=True):
    """One user's (or the app's) usage in one period, as a whole and by model, agent and kind."""

    period: str
    user_id: str | None
    totals: Totals
    by_model: dict[str, Totals]
    by_agent: dict[str, Totals]
    by_kind: dict[str, Totals]


_encode = msgspec.json.Encoder().encode
_decode_entry = msgspec.json.Decoder(UsageEntry).decode


class UsageLedger:
    @classmethod
    def from_settings(cls, redis: Client, scripts: Scripts, settings: Settings) -> UsageLedger:
        return cls(redis, scripts, period=settings.usage_period, prices=prices_of(settings.app_module))

    def __init__(self, redis: Client, scripts: Scripts, *, period: Period = "month",
                 prices: dict[str, Price] | None = None) -> None:
        self._redis = redis
        self._scripts = scripts
        self.period = period
        self.prices = prices or {}

    def cost_of(self, model: str, input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> int:
        price = self.prices.get(model)
        return price.cost_micros(input_tokens, output_tokens, cached_tokens) if price else 0

    async def record(self, entry: UsageEntry) -> int:
        """Keep one model call's usage (its cost from the price table); returns the user's usage version."""
        if not entry.cost_micros:
            entry.cost_micros = self.cost_of(entry.model, entry.input, entry.output, entry.cached)
        period = period_of(entry.at, self.period)
        groups = ["", f"m:{entry.model}:", f"a:{entry.agent}:", f"k:{entry.kind}:"]
        amounts = {"calls": 1, "input": entry.input, "output": entry.output, "cached": entry.cached,
                   "reasoning": entry.reasoning, "costMicros": entry.cost_micros}
        pairs: list[str | int] = [x for field, n in amounts.items() for x in (field, n)]
        with redis_errors():
            return int(await self._scripts.run(
                USAGE_RECORD, [keys.usage_log(entry.user_id), keys.usage_totals(entry.user_id, period),
                                 keys.usage_state(entry.user_id), keys.part_of(keys.app_usage(period), entry.user_id),
                                 keys.part_of(keys.app_usage_users(period), entry.user_id),
                                 keys.part_of(keys.USAGE_USERS, entry.user_id)],
                [keys.usage_channel(entry.user_id), _encode(entry), entry.user_id, entry.cost_micros, *groups, "|",
                 *pairs]))

    def current_period(self) -> str:
        return period_of(now_ms(), self.period)

    async def summary(self, user_id: str | None, period: str | None = None) -> tuple[int, UsageSummary]:
        """(the user's usage version, their usage in ``period``); ``user_id`` None: the whole app."""
        period = period or self.current_period()
        version: list[Any] = []
        flat: Counter[str] = Counter()
        with redis_errors():
            if user_id is None:  # the app's: every partition's part, added up (not a live query: no version)
                for part in await partitions.each(self._redis, keys.app_usage(period), lambda p, key: p.hgetall(key)):
                    flat.update({text(k): int(v) for k, v in part.items()})
            else:
                async with self._redis.pipeline(transaction=False) as pipe:
                    pipe.hgetall(keys.usage_totals(user_id, period))
                    pipe.hget(keys.usage_state(user_id), "version")
                    raw, *version = await pipe.execute()
                flat.update({text(k): int(v) for k, v in raw.items()})
        out = UsageSummary(period=period, user_id=user_id, totals=_totals(flat, ""), by_model={}, by_agent={},
                           by_kind={})
        for name in flat:
            tag, _, rest = name.partition(":")
            if tag in ("m", "a", "k") and rest:
                group = rest.rsplit(":", 1)[0]
                target = {"m": out.by_model, "a": out.by_agent, "k": out.by_kind}[tag]
                if group not in target:
                    target[group] = _totals(flat, f"{tag}:{group}:")
        return int(version[0] or 0) if version else 0, out

    async def users(self, period: str | None = None, limit: int = 1000) -> list[tuple[str, int]]:
        """Users with usage in the period, by cost, highest first: (userId, costMicros)."""
        with redis_errors():
            found = await partitions.top(self._redis, keys.app_usage_users(period or self.current_period()), limit)
        return [(member, int(score)) for member, score in found]

    async def entries(self, user_id: str, period: str | None = None) -> list[UsageEntry]:
        """The user's ledger entries of one period, oldest first."""
        period = period or self.current_period()
        start, end = _bounds(period)
        with redis_errors():  # entry ids are the times they were written, just after their ``at``
            found: Any = await self._redis.xrange(keys.usage_log(user_id), start - SLACK_MS, end + SLACK_MS)
        entries = [_decode_entry(as_bytes(fields[b"e"])) for _, fields in found or []]
        return [e for e in entries if start <= e.at < end]

    async def pages(self, user_id: str, size: int = 1000) -> AsyncIterator[list[UsageEntry]]:
        """Every ledger entry of the user's (all periods kept), oldest first, ``size`` at a time."""
        after = "-"
        while True:
            with redis_errors():
                found: Any = await self._redis.xrange(keys.usage_log(user_id), after, "+", count=size)
            if not found:
                return
            yield [_decode_entry(as_bytes(fields[b"e"])) for _, fields in found]
            after = f"({text(found[-1][0])}"

    async def trim(self, keep_days: int) -> int:
        """Drop every user's ledger entries older than ``keep_days`` (the totals stay); returns how many."""
        cutoff = now_ms() - keep_days * 86_400_000
        dropped = 0
        with redis_errors():
            for part in keys.every_partition(keys.USAGE_USERS):
                async for member in self._redis.sscan_iter(part, count=500):
                    dropped += int(await self._redis.xtrim(keys.usage_log(text(member)), minid=cutoff,
                                                           approximate=False))
        return dropped


# A spreadsheet reads a cell starting with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: str | int) -> str | int:
    """``value`` as a spreadsheet shows it literally: text that would start a formula gets a leading quote."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def to_csv(entries: Sequence[UsageEntry]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["at", "userId", "threadId", "agent", "provider", "model", "kind", "input", "output", "cached",
                     "reasoning", "costUsd"])
    for e in entries:
        writer.writerow([csv_cell(v) for v in (
            datetime.fromtimestamp(e.at / 1000, UTC).isoformat(), e.user_id, e.thread_id, e.agent,
            e.provider, e.model, e.kind, e.input, e.output, e.cached, e.reasoning, f"{e.cost_micros / 1_000_000:.6f}")])
    return out.getvalue()


def _totals(flat: dict[str, int], prefix: str) -> Totals:
    return Totals(**{_snake(f): flat.get(prefix + f, 0) for f in FIELDS})


def _snake(field: str) -> str:
    return "cost_micros" if field == "costMicros" else field


def _bounds(period: str) -> tuple[int, int]:
    """[start, end) in epoch ms of a period name (BadRequest when it names none)."""
    if not re.fullmatch(r"\d{4}-(\d{2}|W\d{2}|\d{2}-\d{2})", period):
        raise BadRequest("a period is YYYY-MM, YYYY-Www or YYYY-MM-DD")
    try:
        return _span(period)
    except ValueError:
        raise BadRequest(f"there is no period {period}") from None


def _span(period: str) -> tuple[int, int]:
    if "W" in period:
        year, week = period.split("-W")
        start = datetime.fromisocalendar(int(year), int(week), 1).replace(tzinfo=UTC)
        return _ms(start), _ms(start) + 7 * 86_400_000
    parts = [int(p) for p in period.split("-")]
    if len(parts) == 3:
        start = datetime(parts[0], parts[1], parts[2], tzinfo=UTC)
        return _ms(start), _ms(start) + 86_400_000
    start = datetime(parts[0], parts[1], 1, tzinfo=UTC)
    after = datetime(parts[0] + (parts[1] == 12), parts[1] % 12 + 1, 1, tzinfo=UTC)
    return _ms(start), _ms(after)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
