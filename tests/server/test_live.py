"""Shared live queries and the change listener, in-process against a real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio.cluster import RedisCluster

from tests.support.workflows import child_sum
from threadline.server import args as A
from threadline.server.context import Context, Services
from threadline.server.delta_log import DeltaLog
from threadline.server.fanout import ChangeListener
from threadline.server.live import LiveQueries
from threadline.server.queries import QUERIES
from threadline.shared.auth import Identity
from threadline.shared.config import load_settings
from threadline.shared.errors import ChatError
from threadline.shared.patches import Change
from threadline.shared.records import Message
from threadline.shared.runtime import Runtime
from threadline.shared.threads import Store

pytestmark = pytest.mark.anyio


class Tab:
    """A subscriber that records what it is sent."""

    def __init__(self) -> None:
        self.results: list[tuple[str, int, str]] = []
        self.changes: list[Change | None] = []
        self.errors: list[tuple[str, ChatError]] = []

    def deliver_result(self, sub_id: str, version: int, value: str, streams: dict[str, int],
                       change: Change | None = None) -> None:
        self.results.append((sub_id, version, value))
        self.changes.append(change)

    def deliver_deltas(self, sub_id: str, stream_id: str, parts: list[str]) -> None:
        pass

    def deliver_error(self, sub_id: str, error: ChatError) -> None:
        self.errors.append((sub_id, error))


@pytest.fixture
async def live(store: Store, tmp_path: Path) -> AsyncIterator[tuple[LiveQueries, ChangeListener, Context]]:
    listener = ChangeListener(store.redis)
    registry = LiveQueries(listener, DeltaLog(store))
    settings = load_settings({"DATA_DIR": str(tmp_path)})
    services = Services(runtime=Runtime(settings, redis=store.redis), secret="x" * 32, dev_mode=False,
                        listener=listener, live=registry)
    listener.start()
    try:
        yield registry, listener, Context(services, Identity("alice"))
    finally:
        await listener.stop()


async def eventually(check, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


def text(m: str) -> Message:
    return Message(message_id="", thread_id="", text=m)


async def test_identical_subscriptions_share_one_value_encoded_once(live, store: Store) -> None:  # type: ignore[no-untyped-def]
    registry, _, ctx = live
    t = await store.threads.create("alice")
    q = QUERIES["messages.list"]
    tabs = [Tab() for _ in range(20)]
    for i, tab in enumerate(tabs):
        await registry.subscribe(ctx, q, A.MessagesList(thread_id=t.thread_id), tab, f"s{i}")
    assert len(registry) == 1 and registry.runs == 1
    await store.messages.save(t.thread_id, "alice", [text("hi")])
    await eventually(lambda: all(len(tab.results) == 2 for tab in tabs))
    assert registry.runs == 2
    values = {id(tab.results[-1][2]) for tab in tabs}
    assert len(values) == 1  # the very same encoded object for every subscriber
    changes = {id(tab.changes[-1]) for tab in tabs}  # and one change from the first value, to patch from
    assert len(changes) == 1 and tabs[0].changes == [None, tabs[0].changes[-1]]
    change = tabs[0].changes[-1]
    assert change is not None and change.base is tabs[0].results[0][2] and change.value is tabs[0].results[1][2]


async def test_a_burst_of_writes_is_coalesced(live, store: Store) -> None:  # type: ignore[no-untyped-def]
    registry, _, ctx = live
    t = await store.threads.create("alice")
    tab = Tab()
    await registry.subscribe(ctx, QUERIES["messages.list"], A.MessagesList(thread_id=t.thread_id), tab, "s")
    await asyncio.gather(*(store.messages.save(t.thread_id, "alice", [text(str(i))]) for i in range(100)))
    await eventually(lambda: '"order":100' in tab.results[-1][2])
    await asyncio.sleep(0.2)
    assert registry.runs < 30, registry.runs  # 100 notices, a handful of runs
    versions = [v for _, v, _ in tab.results]
    assert versions == sorted(versions)


async def test_upstream_subscribe_on_first_interest_unsubscribe_on_last(live, store: Store) -> None:  # type: ignore[no-untyped-def]
    registry, listener, ctx = live
    t = await store.threads.create("alice")
    q, a = QUERIES["messages.list"], A.MessagesList(thread_id=t.thread_id)
    one, two = Tab(), Tab()
    sq = await registry.subscribe(ctx, q, a, one, "s")
    await registry.subscribe(ctx, q, a, two, "s")
    assert len(listener.channels) == 1
    registry.unsubscribe(sq, one, "s")
    assert len(listener.channels) == 1
    registry.unsubscribe(sq, two, "s")
    assert listener.channels == set() and len(registry) == 0
    await eventually(lambda: not listener.upstream())


async def test_after_the_listener_reconnects_every_query_is_rerun(live, store: Store) -> None:  # type: ignore[no-untyped-def]
    registry, listener, ctx = live
    t = await store.threads.create("alice")
    tab = Tab()
    await registry.subscribe(ctx, QUERIES["messages.list"], A.MessagesList(thread_id=t.thread_id), tab, "s")
    runs = registry.runs
    if isinstance(store.redis, RedisCluster):  # every primary's subscribers
        await store.redis.execute_command("CLIENT KILL", "TYPE", "pubsub", target_nodes=RedisCluster.PRIMARIES)
    else:
        await store.redis.client_kill_filter(_type="pubsub")
    # a write while the listener is down: its notice is lost, the re-run finds it
    await store.messages.save(t.thread_id, "alice", [text("while away")])
    await eventually(lambda: listener.reconnects >= 1)
    await eventually(lambda: any("while away" in v for _, _, v in tab.results))
    assert registry.runs > runs
    await store.messages.save(t.thread_id, "alice", [text("after")])
    await eventually(lambda: '"after"' in tab.results[-1][2])


async def test_a_failing_query_is_dropped_with_an_error(live, store: Store) -> None:  # type: ignore[no-untyped-def]
    registry, _, ctx = live
    t = await store.threads.create("alice")
    tab = Tab()
    await registry.subscribe(ctx, QUERIES["threads.get"], A.ThreadRef(thread_id=t.thread_id), tab, "s")
    await store.delete_thread(t.thread_id, "alice")
    await eventually(lambda: bool(tab.errors))
    assert tab.errors[0][1].code == "not_found" and len(registry) == 0


async def test_the_list_of_every_run_is_live_for_an_admin(live, store: Store) -> None:  # type: ignore[no-untyped-def]
    """admin.workflows follows every partition's runs (their notices are in their partitions' slots)."""
    registry, _, ctx = live
    admin = Context(ctx.services, Identity("ops", admin=True))
    tab = Tab()
    await registry.subscribe(admin, QUERIES["admin.workflows"], A.WorkflowsList(), tab, "s")
    assert tab.results and '"page":[]' in tab.results[-1][2]
    journal = ctx.services.workflows
    run_ids = [(await journal.start(child_sum, f"user{i}", [i]))[0] for i in range(3)]
    await eventually(lambda: all(r in tab.results[-1][2] for r in run_ids))
