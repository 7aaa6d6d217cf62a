"""The Redis pub/sub listener of a web process, and the router of what it hears.

It owns channel -> listeners: a live query refs the channels it depends on
(its change notices, and its thread's deltas if it carries streams) and hears
every message of them. It subscribes upstream to a channel when the first
listener refs it and unsubscribes when the last one goes.

Channels are shard channels (SSUBSCRIBE; the writers SPUBLISH), each in the
hash slot of the keys it announces, so the same code serves one node and a
Redis Cluster: on a cluster it holds one subscription connection per primary it
needs (``_Node``), each read by its own task, and one subscribe command names
the channels of one slot only. When a slot moves to another primary, the old one
unsubscribes its channels on its own: the listener finds the new owner,
subscribes there, and tells the listeners of those channels (only) to resync.
Redis pub/sub is at-most-once: after a reconnect the listeners of that
connection's channels resync (re-run), once the subscriptions are back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Protocol

import redis.asyncio as aioredis
import redis.exceptions as rexc
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot

from threadline.shared.storage.client import node_pool
from threadline.shared.tasks import cancel_and_wait

log = logging.getLogger(__name__)

BACKOFF_S = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
CONFIRM_TIMEOUT_S = 5.0
SINGLE = "single"  # the one node of a non-cluster Redis


class Listener(Protocol):
    """What hears a channel (a live query)."""

    def heard(self, channel: str, data: bytes) -> None:
        """A message of a channel this listener refs."""

    def resync(self) -> None:
        """Messages may have been lost (a connection to Redis was lost, a slot moved): catch up."""


class _Node:
    """The shard subscriptions held on one node: its pubsub connection and the task reading it."""

    def __init__(self, name: str, client: aioredis.Redis) -> None:
        self.name = name
        self.client = client
        self.pubsub: PubSub = client.pubsub()
        self.channels: set[str] = set()  # subscribed here (or to be, once the node is back)
        self.leaving: defaultdict[str, int] = defaultdict(int)  # our own unsubscribes not yet confirmed
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None


class ChangeListener:
    """Routes every message of a channel to the listeners that ref it (``redis``: a client of one
    node, or of a cluster)."""

    def __init__(self, redis: aioredis.Redis | RedisCluster) -> None:
        self._redis = redis
        self._routes: defaultdict[str, set[Listener]] = defaultdict(set)
        self._confirmed: dict[str, asyncio.Event] = {}
        self._nodes: dict[str, _Node] = {}
        self._home: dict[str, str] = {}  # channel -> the node it is subscribed on
        self._lock = asyncio.Lock()  # one change of subscriptions at a time
        self._chores: set[asyncio.Task[None]] = set()
        self._running = False
        self.reconnects = 0
        self.moves = 0

    def start(self) -> None:
        self._running = True
        for node in self._nodes.values():
            self._read(node)

    async def stop(self) -> None:
        self._running = False
        for task in [*self._chores, *(n.task for n in self._nodes.values() if n.task is not None)]:
            await cancel_and_wait(task)
        for node in self._nodes.values():
            with contextlib.suppress(Exception):
                await node.pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # (annotated from redis 8.2)
            with contextlib.suppress(Exception):
                await node.client.aclose()

    @property
    def channels(self) -> set[str]:
        return set(self._routes)

    def upstream(self) -> set[str]:
        """The channels subscribed on some node now."""
        return {ch for node in self._nodes.values() for ch in node.channels}

    async def ref(self, channels: list[str], who: Listener) -> None:
        """Route ``channels`` to ``who``; returns once Redis confirmed the subscription."""
        new = [ch for ch in channels if ch not in self._routes]
        for ch in channels:
            self._routes[ch].add(who)
        if new:
            for ch in new:
                self._confirmed.setdefault(ch, asyncio.Event())
            async with self._lock:
                todo = []
                for ch in new:
                    if ch in self._home:  # unref'd a moment ago, its unsubscribe not sent: still on
                        self._confirmed[ch].set()
                    elif ch in self._routes:
                        todo.append(ch)
                await self._subscribe(todo)
        waits = [self._confirmed[ch].wait() for ch in channels if ch in self._confirmed]
        if waits:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*waits), CONFIRM_TIMEOUT_S)

    def unref(self, channels: list[str], who: Listener) -> None:
        """Stop routing ``channels`` to ``who``; the last listener of a channel unsubscribes upstream."""
        gone = []
        for ch in channels:
            group = self._routes.get(ch)
            if group is None:
                continue
            group.discard(who)
            if not group:
                del self._routes[ch]
                self._confirmed.pop(ch, None)
                gone.append(ch)
        if gone:
            self._chore(self._unsubscribe(gone))

    # -- subscriptions (under the lock) -------------------------------------------------

    async def _subscribe(self, channels: list[str]) -> bool:
        """Subscribe each channel on the node serving its slot now; False if a node could not be
        reached (its reader subscribes them once it is back)."""
        ok = True
        for node, group in (await self._placed(channels)).items():
            for same_slot in by_slot(group):
                try:
                    await node.pubsub.ssubscribe(*same_slot)
                except (rexc.ConnectionError, rexc.TimeoutError, OSError) as exc:
                    log.warning("subscribing on %s failed (%s); its reader subscribes again", node.name, exc)
                    ok = False
                node.channels.update(same_slot)
                self._home.update(dict.fromkeys(same_slot, node.name))
            node.wake.set()
        return ok

    async def _unsubscribe(self, channels: list[str]) -> None:
        async with self._lock:
            for ch in channels:
                name = self._home.get(ch)
                if ch in self._routes or name is None:
                    continue  # ref'd again meanwhile, or never subscribed
                del self._home[ch]
                node = self._nodes[name]
                node.channels.discard(ch)
                node.leaving[ch] += 1
                with contextlib.suppress(Exception):
                    await node.pubsub.sunsubscribe(ch)

    async def _placed(self, channels: list[str]) -> dict[_Node, list[str]]:
        """The channels by the node serving their slot (a node met for the first time gets a
        connection and a reader)."""
        placed: dict[_Node, list[str]] = defaultdict(list)
        if isinstance(self._redis, RedisCluster):
            await self._redis.initialize()
        for ch in channels:
            name, pool = self._owner(ch)
            node = self._nodes.get(name)
            if node is None:
                node = self._nodes[name] = _Node(name, _own_client(pool()))
                if self._running:
                    self._read(node)
            placed[node].append(ch)
        return placed

    def _owner(self, channel: str) -> tuple[str, Callable[[], aioredis.ConnectionPool]]:
        """The name of the node serving ``channel``'s slot now, and how to reach it."""
        redis = self._redis
        if not isinstance(redis, RedisCluster):
            return SINGLE, lambda: redis.connection_pool
        owner = redis.get_node_from_key(channel)
        if owner is None:
            raise rexc.ConnectionError(f"no node serves the slot of {channel} now")
        return owner.name, lambda: node_pool(redis, owner)

    async def _rehome(self, node: _Node) -> list[str]:
        """After a lost connection (or an error) on ``node``: a fresh connection, and its channels
        subscribed again where their slots are now; returns them (ConnectionError if a node is
        still out of reach)."""
        async with self._lock:
            old, node.pubsub = node.pubsub, node.client.pubsub()
            with contextlib.suppress(Exception):
                await old.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # (annotated from redis 8.2)
            channels = sorted(ch for ch in node.channels if ch in self._routes)
            node.channels.clear()
            node.leaving.clear()
            if not await self._subscribe_where_now(channels):
                raise rexc.ConnectionError(f"{node.name} is still out of reach")
            return channels

    async def _moved(self, node: _Node, channel: str) -> None:
        """The node unsubscribed ``channel`` on its own: its slot moved. Subscribe where it is now,
        then its listeners resync."""
        async with self._lock:
            if self._home.get(channel) != node.name:
                return
            node.channels.discard(channel)
            for key in (channel, channel.encode()):  # redis-py would subscribe it here again on reconnect
                node.pubsub.shard_channels.pop(key, None)
            del self._home[channel]
            if channel not in self._routes:
                return
            await self._subscribe_where_now([channel])
            self.moves += 1
        log.info("channel %s moved off %s; its listeners resync", channel, node.name)
        await self._resync_when_confirmed([channel])

    async def _subscribe_where_now(self, channels: list[str]) -> bool:
        """Subscribe ``channels`` (lost from their node) where their slots are now, after reading the
        cluster's slots again; their confirmations are awaited afresh (see _resync_when_confirmed)."""
        for ch in channels:
            self._home.pop(ch, None)
            self._confirmed[ch] = asyncio.Event()
        if isinstance(self._redis, RedisCluster):
            await self._redis.nodes_manager.initialize()
        return await self._subscribe(channels)

    # -- reading --------------------------------------------------------------------------

    def _read(self, node: _Node) -> None:
        node.task = asyncio.get_running_loop().create_task(self._reader(node), name=f"listener-{node.name}")

    async def _reader(self, node: _Node) -> None:
        attempt = 0
        while True:
            try:
                if not node.channels:
                    node.wake.clear()
                    await node.wake.wait()
                    continue
                if not node.pubsub.subscribed:
                    raise rexc.ConnectionError("no subscription on this connection")
                msg = await node.pubsub.get_message(timeout=1.0)
                attempt = 0
                if msg is not None:
                    self._handle(node, msg)
            except asyncio.CancelledError:
                raise
            except (rexc.ConnectionError, rexc.TimeoutError, OSError, rexc.ResponseError) as exc:
                delay = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
                attempt += 1
                log.warning("change listener lost %s (%s); retrying in %.2fs", node.name, exc, delay)
                await asyncio.sleep(delay)
                try:
                    channels = await self._rehome(node)
                except (rexc.RedisError, OSError) as again:
                    log.warning("change listener could not subscribe again yet: %s", again)
                    continue
                self.reconnects += 1
                log.info("change listener back on %s; re-running %d channels' live queries", node.name,
                         len(channels))
                self._chore(self._resync_when_confirmed(channels))
            except Exception:
                log.exception("change listener error")
                await asyncio.sleep(0.1)

    def _handle(self, node: _Node, msg: dict[str, Any]) -> None:
        kind = msg["type"]
        channel = msg["channel"]
        name = channel.decode() if isinstance(channel, bytes) else str(channel)
        if kind == "smessage":
            data = msg["data"]
            raw = data if isinstance(data, bytes) else str(data).encode()
            for who in list(self._routes.get(name, ())):
                try:
                    who.heard(name, raw)
                except Exception:  # one listener's fault must not starve the others
                    log.exception("a listener of %s failed", name)
        elif kind == "ssubscribe":
            event = self._confirmed.get(name)
            if event is not None:
                event.set()
        elif kind == "sunsubscribe":
            if node.leaving.get(name):
                node.leaving[name] -= 1
            else:
                self._chore(self._moved(node, name))

    async def _resync_when_confirmed(self, channels: list[str]) -> None:
        """Once the subscriptions are confirmed (so no later message can be missed), the channels'
        listeners catch up, each once."""
        waits = [self._confirmed[ch].wait() for ch in channels if ch in self._confirmed]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*waits), CONFIRM_TIMEOUT_S)
        for who in {who for ch in channels for who in self._routes.get(ch, ())}:
            who.resync()

    def _chore(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)


def by_slot(channels: Iterable[str]) -> list[list[str]]:
    """``channels`` grouped by hash slot, in first-seen order (a cluster refuses a shard subscribe
    that spans slots)."""
    groups: dict[int, list[str]] = {}
    for ch in channels:
        groups.setdefault(key_slot(ch.encode()), []).append(ch)
    return list(groups.values())


def _own_client(pool: aioredis.ConnectionPool) -> aioredis.Redis:
    """A client of the same node as ``pool`` for subscriptions alone, which never reconnects on its
    own: a pubsub connection that redis-py re-established silently would hide the loss, and the
    messages sent meanwhile, from the listeners that must resync."""
    kwargs = {**pool.connection_kwargs, "retry": Retry(NoBackoff(), 0)}
    return aioredis.Redis.from_pool(aioredis.ConnectionPool(connection_class=pool.connection_class,
                                                            max_connections=4, **kwargs))

