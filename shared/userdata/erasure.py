"""Erasing a user's data on request (the right to erasure), resumable after a crash.

An erasure is a record in the user's partition (keys.erasure) and an entry in ERASURES, its
partition's set of erasures not finished, scored by when one may take it up: now when asked, the
end of its runner's lease while one works on it. A runner takes it (the lease), does the steps in
order from the one recorded, and records each step as done once it is. Every step finds what is
left and erases it, so doing a step again (a runner that died in its middle, whose lease ran out:
the maintenance job or the next ask takes it up) finishes it and repeats nothing that was done.

Steps: the threads they own are deleted with all of them (messages, streams, snippets, vectors,
file references); in threads shared with them their messages and snippets are deleted and they
leave; their files (and the bytes no other file holds); their items in the cross-thread store and
their own RAG namespace's documents;
their workflow runs; the webhook deliveries of events about them not sent yet; every key of theirs (thread list, usage ledger and totals, idempotency
records, counters) and their rate-limit state; their names in the app-wide sets; any vector left
with their user id. The app-wide usage totals stay (sums, no one's record). The record stays,
without any data, for ERASED_KEEP_S: proof of when it was done.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any, Literal

import msgspec

from threadline.shared import keys
from threadline.shared.clock import now_ms
from threadline.shared.errors import Conflict, NotFound
from threadline.shared.faults import crash_point
from threadline.shared.indexing.ops import IndexOp
from threadline.shared.runtime import Runtime
from threadline.shared.storage import partitions
from threadline.shared.storage.client import redis_errors, text, texts
from threadline.shared.storage.scripts import lua

log = logging.getLogger(__name__)

ERASURE_TAKE = lua(__file__, "erasure_take")
STEPS = ("schedules", "threads", "files", "items", "documents", "workflows", "webhooks", "keys", "vectors")  # (schedules first: none fires meanwhile)
ERASED_KEEP_S = 30 * 86400
PAGE = 100

Status = Literal["running", "done"]


class ErasureView(msgspec.Struct, rename="camel", kw_only=True):
    user_id: str
    status: Status
    step: str  # the next step to do ("" when done)
    requested_at: int
    requested_by: str
    finished_at: int | None = None
    erased: dict[str, int] = {}  # how many things each step erased


def _view(user_id: str, raw: Mapping[Any, Any]) -> ErasureView:
    def get(name: str) -> str:
        return text(raw.get(name.encode(), b""))

    step = int(get("step") or 0)
    return ErasureView(user_id=user_id, status=get("status") or "running",  # type: ignore[arg-type]
                       step=STEPS[step] if step < len(STEPS) else "", requested_at=int(get("requestedAt") or 0),
                       requested_by=get("requestedBy"), finished_at=int(get("finishedAt")) if get("finishedAt") else None,
                       erased={s: int(get(f"erased:{s}")) for s in STEPS if get(f"erased:{s}")})


class Erasures:
    """Ask for, run and read erasures of users' data."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.redis = rt.redis
        self.lease_ms = rt.settings.erase_lease_ms  # a runner silent this long is taken for dead (each batch renews it)

    async def ask(self, user_id: str, by: str) -> ErasureView:
        """Record an erasure of ``user_id`` (the one not finished, if there is one); a runner then
        does it (``run``)."""
        record, due = keys.erasure(user_id), keys.part_of(keys.ERASURES, user_id)
        with redis_errors():
            if await self.redis.hget(record, "status") != b"running":
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.execute_command("UNLINK", record)  # (a cluster pipeline queues no unlink())
                    pipe.hset(record, mapping={"status": "running", "step": 0, "requestedAt": now_ms(),
                                               "requestedBy": by})
                    pipe.zadd(due, {user_id: 0})
                    await pipe.execute()
        return await self.view(user_id)

    async def view(self, user_id: str) -> ErasureView:
        with redis_errors():
            raw = await self.redis.hgetall(keys.erasure(user_id))
        if not raw:
            raise NotFound(f"no erasure of user {user_id} on record")
        return _view(user_id, raw)

    async def due(self, limit: int = 20) -> list[str]:
        """Users whose erasure waits for a runner (never taken, or its runner's lease ran out)."""
        with redis_errors():
            return texts(await partitions.due(self.rt.store.scripts, keys.ERASURES, now_ms(), limit))

    async def run(self, user_id: str) -> ErasureView | None:
        """Do the erasure's steps left, unless another runner holds it (None then)."""
        step = await self._take(user_id)
        if step is None:
            return None
        for index in range(step, len(STEPS)):
            name = STEPS[index]
            erased = await getattr(self, f"_{name}")(user_id)
            crash_point(f"erase:{name}")  # fault tests: the runner dies with the step done, not recorded
            with redis_errors():
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.hincrby(keys.erasure(user_id), f"erased:{name}", erased)
                    pipe.hset(keys.erasure(user_id), "step", index + 1)
                    await pipe.execute()
            await self._renew(user_id)
        with redis_errors():
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(keys.erasure(user_id), mapping={"status": "done", "finishedAt": now_ms()})
                pipe.expire(keys.erasure(user_id), ERASED_KEEP_S)
                pipe.zrem(keys.part_of(keys.ERASURES, user_id), user_id)
                await pipe.execute()
        view = await self.view(user_id)
        log.info("erased user %s: %s", user_id, view.erased)
        return view

    async def _take(self, user_id: str) -> int | None:
        with redis_errors():
            step = await self.rt.store.scripts.run(
                ERASURE_TAKE, [keys.erasure(user_id), keys.part_of(keys.ERASURES, user_id)],
                [user_id, now_ms(), self.lease_ms])
        return None if int(step) < 0 else int(step)

    async def _renew(self, user_id: str) -> None:
        with redis_errors():
            await self.redis.zadd(keys.part_of(keys.ERASURES, user_id), {user_id: now_ms() + self.lease_ms}, xx=True)

    # -- the steps: each erases what is left and says how much --------------------------------

    async def _schedules(self, user_id: str) -> int:
        """Their schedules (kept apart from their own keys, in the schedules' slot), and their list."""
        schedules = self.rt.schedules
        _, found = await schedules.of_user(user_id)
        for schedule in found:
            with contextlib.suppress(NotFound):
                await schedules.change(schedule.schedule_id, "delete", None)
        with redis_errors():
            await self.redis.delete(keys.user_schedules(user_id), keys.user_schedules_version(user_id))
        return len(found)

    async def _threads(self, user_id: str) -> int:
        store, erased = self.rt.store, 0
        for thread_id in await store.threads.all_ids(user_id):
            try:
                thread = await store.threads.get(thread_id)
            except NotFound:  # gone; its list entry goes with the user's keys
                continue
            if thread.user_id == user_id:
                await store.delete_thread(thread_id, user_id)
                erased += 1
                continue
            erased += await self._theirs_in(thread_id, user_id)
            await store.threads.remove_member(thread_id, None, user_id)
            await self._renew(user_id)
        return erased

    async def _theirs_in(self, thread_id: str, user_id: str) -> int:
        """Delete the user's messages (a reply to their prompt is theirs too) and snippets in a
        thread of someone else's."""
        store, erased, cursor = self.rt.store, 0, None
        mine: list[str] = []
        while True:
            _, page = await store.messages.list(thread_id, None, num_items=PAGE, cursor=cursor)
            mine += [m.message_id for m in page.page if m.user_id == user_id]
            if page.is_done:
                break
            cursor = page.continue_cursor
        async for hidden in store.messages.off_branch(thread_id):  # (earlier versions, and their replies)
            mine += [m.message_id for m in hidden if m.user_id == user_id]
        for stream in await store.streams.list(thread_id):  # first their replies' streams (their text)
            if stream.message_id in mine:
                await store.streams.abort(thread_id, stream.stream_id)
                await store.streams.drop(thread_id, stream.stream_id)
        for at in range(0, len(mine), PAGE):
            erased += (await store.messages.delete(mine[at:at + PAGE], None))[0]
        cursor = None
        while True:
            _, snippets = await store.snippets.list(thread_id, None, num_items=PAGE, cursor=cursor)
            for s in snippets.page:
                if s.user_id == user_id:
                    erased += (await store.snippets.delete(s.snippet_id, None))[1]
            if snippets.is_done:
                return erased
            cursor = snippets.continue_cursor

    async def _files(self, user_id: str) -> int:
        files, erased = self.rt.files, 0
        while page := (await files.list(user_id, num_items=PAGE)).page:
            for record in page:
                try:
                    await files.delete(record.file_id, user_id)
                except NotFound:
                    pass
                except Conflict:  # a reference still on its way (the outbox): a later run finishes it
                    await self.rt.store.outbox.sweep(older_than_ms=0)
                    await files.delete(record.file_id, user_id)
                erased += 1
            await self._renew(user_id)
        return erased

    async def _items(self, user_id: str) -> int:
        """Their namespace's items, each deleted (so its vector is forgotten; the documents step then
        unlinks what is left of the namespace)."""
        items, namespace, erased = self.rt.store.items, f"user:{user_id}", 0
        while (page := (await items.page(namespace, num_items=PAGE))[1].page):
            for item in page:
                erased += (await items.delete(namespace, item.key))[1]
            await self._renew(user_id)
        return erased

    async def _documents(self, user_id: str) -> int:
        documents, namespace, erased = self.rt.store.documents, f"user:{user_id}", 0
        while (page := (await documents.page(namespace, num_items=PAGE))[1].page):
            for doc in page:
                erased += (await documents.delete(namespace, doc.key))[1]
            await self._renew(user_id)
        await self._unlink_matching(keys.namespace_keys_glob(namespace))  # (its counters)
        with redis_errors():
            await self.redis.srem(keys.part_of(keys.RAG_NAMESPACES, namespace), namespace)
        return erased

    async def _workflows(self, user_id: str) -> int:
        workflows, erased = self.rt.workflows, 0
        while (page := (await workflows.runs(user_id, num_items=PAGE))[1].page):
            for run in page:
                await workflows.cancel(run.run_id, "the user's data was erased")
                await workflows.forget(run.run_id, user_id)
                erased += 1
            await self._renew(user_id)
        return erased

    async def _webhooks(self, user_id: str) -> int:
        """Their events' deliveries not sent yet (a reply's text) are erased, never attempted again."""
        return await self.rt.store.webhooks.erase_user(user_id)

    async def _keys(self, user_id: str) -> int:
        """Every key of the user's own (lists, usage, idempotency records, counters...), their
        rate-limit state, and their names in the app-wide sets of their partition."""
        redis, erased = self.redis, 0
        periods: set[str] = set()  # the billing periods they have totals of

        def seen(name: str) -> None:
            if (period := keys.usage_period_of(user_id, name)) is not None:
                periods.add(period)

        for pattern in (keys.user_keys_glob(user_id), keys.rate_limits_glob(user_id)):
            erased += await self._unlink_matching(pattern, seen)
        with redis_errors():
            async with redis.pipeline(transaction=False) as pipe:
                pipe.zrem(keys.users(user_id), user_id)
                pipe.srem(keys.part_of(keys.USAGE_USERS, user_id), user_id)
                for period in periods:
                    pipe.zrem(keys.part_of(keys.app_usage_users(period), user_id), user_id)
                await pipe.execute()
        return erased

    async def _unlink_matching(self, pattern: str, seen: Callable[[str], object] = lambda name: None) -> int:
        """UNLINK every key matching ``pattern`` (a SCAN, batch by batch); ``seen`` hears each name."""
        erased = 0
        with redis_errors():
            batch: list[Any] = []
            async for key in self.redis.scan_iter(match=pattern, count=1000):
                seen(text(key))
                batch.append(key)
                if len(batch) == 500:
                    erased += await self._unlink(batch)
                    batch = []
            return erased + await self._unlink(batch)

    async def _unlink(self, batch: list[Any]) -> int:
        if not batch:
            return 0
        async with self.redis.pipeline(transaction=False) as pipe:  # (keys of several slots on a cluster)
            for key in batch:
                pipe.execute_command("UNLINK", key)
            return sum(int(n) for n in await pipe.execute())

    async def _vectors(self, user_id: str) -> int:
        """Anything of theirs the index still holds (their points carry their user id)."""
        await self.rt.store.memory.push(user_id, [IndexOp("forget_user", user_id)])
        return 0
