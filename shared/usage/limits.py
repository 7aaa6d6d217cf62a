"""Rate limits the app configures: on messages and on tokens, per user, agent, team or globally.

A rule (``Limit``) is a token bucket (``limit`` per ``period_s`` on average, ``burst`` at
once) or a fixed window (at most ``limit`` per window of ``period_s``), on messages
(every generation started counts one) or on tokens (a reply's model calls); or a
concurrency cap (``kind="concurrency"``: at most ``limit`` replies in flight at once,
each holding a lease its worker renews, so a dead worker's place comes back). Rules come
from the app module (``RATE_LIMITS = [Limit(...)]``) and the environment
(``RATE_LIMITS``, the same as JSON), plus the default per-user send bucket
(``RATE_LIMIT_SENDS_PER_MINUTE``, ``RATE_LIMIT_BURST``).

All the rules that apply to a request are checked and taken together (all or none: each
rule by a script in its own slot, in a fixed order, and what was taken is given back when one
refuses), so limits hold across every web process, worker and machine. A refusal is
``rate_limited`` with ``retryAfterMs``: when the tightest refusing rule will allow it.

Token rules reserve an estimate before each model call (``estimate_tokens``: the
context's characters / 4, plus the agent's ``max_tokens`` or 1,000 for the answer),
so a reply over the limit is refused before it costs anything; the call's real usage
then settles the reservation (the difference is given back or taken).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec

from threadline.shared import keys
from threadline.shared.app_module import declared_list
from threadline.shared.clock import now_ms
from threadline.shared.config import Settings
from threadline.shared.errors import ConfigError, RateLimited
from threadline.shared.storage.client import Client, redis_errors
from threadline.shared.storage.scripts import Arg, Script, lua
from threadline.shared.tasks import cancel_and_wait
from threadline.shared.webhooks import Webhooks

LIMITS_ADJUST = lua(__file__, "limits_adjust")
LIMITS_HOLD = lua(__file__, "limits_hold")
LIMITS_PEEK = lua(__file__, "limits_peek")
LIMITS_TAKE = lua(__file__, "limits_take")

if TYPE_CHECKING:
    from threadline.shared.storage.scripts import Scripts

On = Literal["messages", "tokens"]
Scope = Literal["user", "agent", "team", "global"]
ANSWER_TOKENS = 1000  # the answer's part of an estimate when the agent sets no max_tokens
LEASE_MS = 30_000  # a reply's place among those in flight lapses this long after its process died
CAP_RETRY_MS = 1000  # when a concurrency cap is full: try again about then (a reply's end is not known)

log = logging.getLogger(__name__)


class Limit(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, rename="camel"):
    name: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
    limit: Annotated[int, msgspec.Meta(ge=1)]
    period_s: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    on: On = "messages"
    kind: Literal["token_bucket", "fixed_window", "concurrency"] = "token_bucket"  # concurrency: replies at once
    per: Scope = "user"
    burst: Annotated[int, msgspec.Meta(ge=1)] | None = None  # a bucket's capacity (default: limit)
    agents: tuple[str, ...] = ()  # only replies of these agents count (none given: every agent's)

    def counts(self, on: On | None) -> bool:
        """Counts ``on`` (None: replies in flight, which concurrency caps count)."""
        return self.kind == "concurrency" if on is None else (self.on == on and self.kind != "concurrency")

    def applies(self, on: On | None, agent: str) -> bool:
        """Counts ``on`` for ``agent``."""
        return self.counts(on) and (not self.agents or agent in self.agents)

    def args(self) -> list[str | int | float]:
        kind = "bucket" if self.kind == "token_bucket" else "window"
        return [kind, self.limit, self.period_s * 1000, self.burst or self.limit]


class RuleState(msgspec.Struct, rename="camel", kw_only=True):
    name: str
    on: On | Literal["replies"]  # replies: a concurrency cap (replies in flight)
    per: Scope
    limit: int
    period_s: float
    remaining: int  # messages or tokens that may go now (a bucket below zero shows 0)
    retry_after_ms: int  # until one more may go (0: now)


class LimitStatus(msgspec.Struct, rename="camel", kw_only=True):
    can_send: bool  # a message may go now (every message rule has room)
    retry_after_ms: int  # else when it may
    at: int  # when this was read (ms): count down from here
    rules: list[RuleState]


@dataclass(frozen=True, slots=True)
class Who:
    """Whom a request counts for: its user (with the teams of their token) and its agent."""

    user_id: str
    agent: str = ""
    teams: tuple[str, ...] = ()


def estimate_tokens(chars: int, max_tokens: int | None) -> int:
    """A model call's tokens before it is made: about four characters a token for the input,
    and the answer's cap (or ANSWER_TOKENS)."""
    return math.ceil(chars / 4) + (max_tokens or ANSWER_TOKENS)


class Limits:
    def __init__(self, redis: Client, scripts: Scripts, rules: Sequence[Limit]) -> None:
        self._redis = redis
        self._scripts = scripts
        self._renewals: set[asyncio.Task[None]] = set()
        self._webhooks = Webhooks(redis, scripts)
        self.rules = list(rules)

    @classmethod
    def from_settings(cls, redis: Client, scripts: Scripts, settings: Settings) -> Limits:
        return cls(redis, scripts, rules_of(settings))

    def has(self, on: On | None) -> bool:
        """Any rule on ``on`` (None: on replies in flight)."""
        return any(r.counts(on) for r in self.rules)

    async def afford(self, who: Who, chars: int, max_tokens: int | None) -> None:
        """RateLimited now (retryAfterMs) when the token limits could not afford even a call of
        ``chars`` characters of input; the call itself reserves its real estimate later."""
        if self.has("tokens"):
            await self.take("tokens", who, estimate_tokens(chars, max_tokens), check=True)

    def _keys(self, on: On | None, who: Who) -> list[tuple[Limit, str]]:
        out = []
        for rule in self.rules:
            if not rule.applies(on, who.agent):
                continue
            scopes: Iterable[str] = {"user": [who.user_id], "agent": [who.agent], "team": who.teams,
                                     "global": ["*"]}[rule.per]
            out += [(rule, keys.rate_limit_rule(rule.name, scope)) for scope in scopes]
        return out

    async def take(self, on: On, who: Who, cost: int = 1, *, check: bool = False) -> None:
        """Take ``cost`` from every rule on ``on`` that applies (all or none); RateLimited otherwise.
        ``check``: take nothing, only refuse what would be refused.

        Each rule's state lives in the partition of its scope (the user, the agent, a team, the
        app), so each rule is reserved by a script of its own; they go in one pipeline in a fixed
        order (by key), and when one refuses, what the others took is given back. The error names
        the refusing rule that makes the caller wait longest."""
        found = sorted(self._keys(on, who), key=lambda rk: rk[1])
        if not found or cost <= 0:
            return
        now = now_ms()
        tell = _teller(who, found)
        results = await self._each(LIMITS_TAKE, found, lambda rule, key: [now, cost, tell(key), "1" if check else "0",
                                                                          *rule.args()])
        refused = [(rule, key, int(r[1])) for (rule, key), r in zip(found, results, strict=True) if not int(r[0])]
        if refused:
            if not check:
                await self._each(LIMITS_ADJUST, [rk for rk, r in zip(found, results, strict=True) if int(r[0])],
                                 lambda rule, key: [now, -cost, tell(key), *rule.args()])
            await self._tell_reached(who, on, refused, now)
            raise _refusal([(rule, wait) for rule, _, wait in refused], cost, on)
        if not check and not tell.told:
            with contextlib.suppress(Exception):
                await self._redis.spublish(keys.rate_limit_channel(who.user_id), now)

    async def _tell_reached(self, who: Who, on: On, refused: Sequence[tuple[Limit, str, int]], now: int) -> None:
        """The ``usage.limit_reached`` webhook event of each refusing rule (with the key of its state, which
        names the rule and the scope it counts), once per such key and period however many requests it
        refuses then (the event's id names them). A refusal changes nothing to guard: a process that dies
        before telling leaves it to the next refusal."""
        try:
            if not await self._webhooks.wants("usage.limit_reached"):
                return
            for rule, key, wait in refused:
                window = now // max(1, int(rule.period_s * 1000))
                data = {"userId": who.user_id, "agentName": who.agent or None, "teams": list(who.teams),
                        "limit": rule.name, "on": on, "kind": rule.kind, "per": rule.per, "max": rule.limit,
                        "periodS": rule.period_s, "retryAfterMs": wait if wait >= 0 else None}
                await self._webhooks.emit("usage.limit_reached", f"evt_limit_{key}_{window}", data, now)
        except Exception:  # the refusal stands whatever happens to its notice
            log.exception("could not record the webhook event of a refusal")

    async def _each(self, script: Script, found: Sequence[tuple[Limit, str]],
                    args: Callable[[Limit, str], list[Arg]]) -> list[Any]:
        """``script`` on each rule's key, in one pipeline, in order; the results (a failure raised)."""
        if not found:
            return []
        with redis_errors():
            results = await self._scripts.run_all([(script, [key], args(rule, key)) for rule, key in found])
            for result in results:
                if isinstance(result, Exception):
                    raise result
        return results

    async def room(self, who: Who) -> None:
        """RateLimited when a concurrency rule is full: ``who`` has as many replies in flight as allowed."""
        await self._hold(who, "", 0)

    @contextlib.asynccontextmanager
    async def reply_slot(self, who: Who, holder: str, lease_ms: int = LEASE_MS) -> AsyncIterator[None]:
        """Hold a place among the replies in flight while the body runs: waits while a concurrency
        rule is full; the lease is renewed as it runs and lapses if its process dies."""
        found = self._keys(None, who)
        if not found:
            yield
            return
        while True:
            try:
                await self._hold(who, holder, lease_ms)
                break
            except RateLimited:
                await asyncio.sleep(0.2)
        with contextlib.suppress(Exception):
            await self._redis.spublish(keys.rate_limit_channel(who.user_id), now_ms())
        renew = asyncio.get_running_loop().create_task(self._renew([k for _, k in found], holder, lease_ms))
        self._renewals.add(renew)
        renew.add_done_callback(self._renewals.discard)
        try:
            yield
        finally:
            await cancel_and_wait(renew)
            with contextlib.suppress(Exception):
                async with self._redis.pipeline(transaction=False) as pipe:
                    for _, key in found:
                        pipe.zrem(key, holder)
                    pipe.spublish(keys.rate_limit_channel(who.user_id), now_ms())  # the status changed
                    await pipe.execute()

    async def _hold(self, who: Who, holder: str, lease_ms: int) -> None:
        """Hold a place under every concurrency rule (one script each, in one pipeline, in a fixed
        order), or none: the places held are given back when one is full; ``holder`` '': only check
        there is room."""
        found = sorted(self._keys(None, who), key=lambda rk: rk[1])
        now = now_ms()
        results = await self._each(LIMITS_HOLD, found, lambda rule, key: [now, lease_ms, holder, rule.limit])
        full = [rule for (rule, _), (ok, _) in zip(found, results, strict=True) if not int(ok)]
        if full:
            held = [key for (_, key), (ok, _) in zip(found, results, strict=True) if int(ok)]
            if holder and held:
                with redis_errors():
                    async with self._redis.pipeline(transaction=False) as pipe:
                        for key in held:
                            pipe.zrem(key, holder)
                        await pipe.execute()
            rule = full[0]
            raise RateLimited(f"{rule.limit} {'reply is' if rule.limit == 1 else 'replies are'} being written "
                              f"already (the `{rule.name}` limit); retry when one ends", retry_after_ms=CAP_RETRY_MS)

    async def _renew(self, keys_: list[str], holder: str, lease_ms: int) -> None:
        while True:
            await asyncio.sleep(lease_ms / 3000)
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for key in keys_:
                        pipe.zadd(key, {holder: now_ms() + lease_ms}, xx=True)
                    await pipe.execute()
            except Exception as exc:  # Redis away a moment: the next renewal tries again
                log.warning("reply lease not renewed: %s", exc)

    async def settle(self, on: On, who: Who, delta: int) -> None:
        """Take ``delta`` more (or give back, when negative) than was taken, unchecked."""
        found = self._keys(on, who)
        if not found or not delta:
            return
        now = now_ms()
        tell = _teller(who, found)
        await self._each(LIMITS_ADJUST, found, lambda rule, key: [now, delta, tell(key), *rule.args()])
        if not tell.told:
            with contextlib.suppress(Exception):
                await self._redis.spublish(keys.rate_limit_channel(who.user_id), now)

    async def status(self, who: Who) -> LimitStatus:
        """Where every rule that applies to ``who`` stands (nothing taken): whether one more message
        may go now, and when it may if not."""
        now = now_ms()
        states: list[RuleState] = []
        found = self._keys("messages", who) + self._keys("tokens", who)
        if found:
            levels = [r[0] for r in await self._each(LIMITS_PEEK, found, lambda rule, key: [now, *rule.args()])]
            for (rule, _), (remaining, wait) in zip(found, levels, strict=True):
                states.append(RuleState(name=rule.name, on=rule.on, per=rule.per, limit=rule.limit,
                                        period_s=rule.period_s, remaining=max(0, int(remaining)),
                                        retry_after_ms=int(wait)))
        caps = self._keys(None, who)
        if caps:
            with redis_errors():
                async with self._redis.pipeline(transaction=False) as pipe:
                    for _, key in caps:
                        pipe.zcount(key, now, "+inf")  # leases still running
                    counts = await pipe.execute()
            for (rule, _), running in zip(caps, counts, strict=True):
                left = max(0, rule.limit - int(running))
                states.append(RuleState(name=rule.name, on="replies", per=rule.per, limit=rule.limit,
                                        period_s=0, remaining=left, retry_after_ms=0 if left else CAP_RETRY_MS))
        wait = max((r.retry_after_ms for r in states if r.on != "tokens"), default=0)
        return LimitStatus(can_send=wait == 0, retry_after_ms=wait, at=now, rules=states)


@dataclass(frozen=True, slots=True)
class _Teller:
    """Which rule's script tells the user's rate-limit watchers (their channel is in the user's slot:
    a rule kept there publishes in its own step); none: the caller publishes after."""

    channel: str
    told: str | None

    def __call__(self, key: str) -> str:
        return self.channel if key == self.told else ""


def _teller(who: Who, found: Sequence[tuple[Limit, str]]) -> _Teller:
    home = keys.in_partition(keys.partition(who.user_id), "")
    return _Teller(keys.rate_limit_channel(who.user_id), next((k for _, k in found if k.startswith(home)), None))


def _refusal(refused: Sequence[tuple[Limit, int]], cost: int, on: On) -> RateLimited:
    """The error naming the refusing rule that makes the caller wait longest (-1: it never fits)."""
    rule, wait = max(refused, key=lambda rw: (rw[1] < 0, rw[1]))
    what = "messages" if on == "messages" else "tokens"
    if wait < 0:
        return RateLimited(f"this needs {cost:,} {what}, more than the `{rule.name}` limit allows at once "
                           f"({rule.burst or rule.limit:,})")
    return RateLimited(f"the `{rule.name}` limit ({rule.limit:,} {what} per {rule.period_s:g} s "
                       f"{'per ' + rule.per if rule.per != 'global' else 'in all'}) is reached; retry in "
                       f"{wait / 1000:.1f} s", retry_after_ms=wait)


def rules_of(settings: Settings) -> list[Limit]:
    return list(_rules(settings.app_module, settings.rate_limits, settings.rate_limit_sends_per_minute,
                       settings.rate_limit_burst))


@cache
def _rules(app_module: str, env: str | None, sends_per_minute: int, burst: int) -> tuple[Limit, ...]:
    found: list[Limit] = []
    if sends_per_minute > 0:
        found.append(Limit(name="sends", limit=sends_per_minute, period_s=60, burst=burst))
    found += declared_list(app_module, "RATE_LIMITS", Limit)
    if env:
        try:
            found += msgspec.json.decode(env, type=list[Limit])
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ConfigError(f"RATE_LIMITS: {exc}") from exc
    names = [r.name for r in found]
    if len(set(names)) != len(names):
        raise ConfigError(f"RATE_LIMITS: two rules share a name: {', '.join(sorted(names))}")
    return tuple(found)


# The rule state every limits script reads (a Lua prelude: see shared.storage.scripts).
