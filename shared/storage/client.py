"""Redis connections and the conversion of Redis errors at the boundary."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import redis
import redis.asyncio as aioredis
import redis.exceptions as rexc
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.driver_info import DriverInfo

from threadline.shared.errors import (
    ChatError,
    Conflict,
    Forbidden,
    Internal,
    NotFound,
    TooLarge,
    Unavailable,
)

log = logging.getLogger(__name__)
# a script's own refusal, also when a pipeline wraps it ("Command # 1 (EVALSHA ...) of pipeline caused error: ...")
_SCRIPT_REPLY = re.compile(r"""(?:^|error: \(?['"]?)(NOTFOUND|CONFLICT|FORBIDDEN|TOOLARGE)\b ?([^'"]*)""")
_SCRIPT_ERRORS: dict[str, type[ChatError]] = {"NOTFOUND": NotFound, "CONFLICT": Conflict, "FORBIDDEN": Forbidden,
                                               "TOOLARGE": TooLarge}


Client = aioredis.Redis | RedisCluster
"""What the store talks to: one node, or a Redis Cluster (mypy checks every call against both)."""
SyncClient = redis.Redis | redis.RedisCluster
"""The same, for the code that runs outside an event loop (RQ's side of the workers)."""

CLUSTER_POOL_FACTOR = 16  # see connect

# CLIENT SETINFO data, made once: redis-py would read package metadata for every new connection
_DRIVER = DriverInfo()


_CLUSTER: dict[str, bool] = {}  # the answers of is_cluster


def is_cluster(url: str) -> bool:
    """Whether ``url`` names a node of a Redis Cluster (asked once per process; a server that does
    not answer is taken for a single node this time, and asked again next time)."""
    from threadline.shared.storage.cluster import cluster_enabled

    if url not in _CLUSTER:
        found = cluster_enabled(url)
        if found is None:
            log.warning("%s did not answer: taken for a single node", redact(url))
            return False
        _CLUSTER[url] = found
    return _CLUSTER[url]


def redact(url: str) -> str:
    """``url`` without its password, for logs."""
    return re.sub(r"//[^@/]*@", "//***@", url)


class _Cluster(RedisCluster):
    """redis-py's asyncio cluster client, whose commands wait for its (re)initialization first, and
    which routes a function call by its keys without asking the server for them.

    redis-py 8.1 looks up a command's routing policy before it initializes the client, so the
    commands sent at once to a new client (a worker's first jobs, say) race its first
    initialization, and some are sent on a connection it closes meanwhile (AttributeError:
    'NoneType' object has no attribute 'writelines'). Initializing first, under the client's own
    lock, keeps them in line.
    """

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        if self._initialize:
            await self.initialize()
        return await super().execute_command(*args, **kwargs)

    async def aclose(self) -> None:
        """Close, and wait for the disconnections redis-py left to background tasks (a node dropped
        by a topology refresh, a connection released for reconnect): a closed client leaves no
        socket open when its event loop ends (a task that never ran did, in the tests' loops)."""
        await super().aclose()
        for _ in range(5):  # (a disconnection may schedule another)
            nodes = [*self.nodes_manager.nodes_cache.values(), *self.nodes_manager.startup_nodes.values()]
            tasks = {*getattr(self.nodes_manager, "_background_tasks", ()),
                     *(t for node in nodes for t in getattr(node, "_background_tasks", ()))}
            if not tasks:
                return
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _determine_slot(self, command: str, *args: Any) -> int:
        """FCALL names its keys as EVALSHA does (after the function's name and their count), but
        redis-py asks the server for them (COMMAND GETKEYS) on every call: a round trip per call of
        a pipeline of functions (the delta batcher's ran at 5,500 calls/s on three primaries)."""
        if command.upper() in ("FCALL", "FCALL_RO") and len(args) >= 2 and int(args[1]) > 0:
            return await super()._determine_slot("EVALSHA", *args)
        return await super()._determine_slot(command, *args)


def connect(url: str, *, max_connections: int = 64, wait_s: float = 10.0) -> Client:
    """An asyncio Redis client (bytes in and out) for ``url``: a cluster client when ``url`` names a
    node of a Redis Cluster (it finds the others and follows their slots).

    On one node the pool is bounded and blocking: past ``max_connections`` a command waits (up to
    ``wait_s``) for a free connection instead of failing at once. redis-py's cluster client fails
    at its bound instead of waiting, so on a cluster each primary's pool may hold
    ``CLUSTER_POOL_FACTOR`` times as many (a burst is spread over the primaries too).
    """
    if is_cluster(url):
        return _Cluster.from_url(url, max_connections=max_connections * CLUSTER_POOL_FACTOR,
                                     socket_keepalive=True, socket_connect_timeout=5, driver_info=_DRIVER)
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=wait_s,
        socket_keepalive=True,
        health_check_interval=30,
        socket_connect_timeout=5,
        driver_info=_DRIVER,
    )
    return aioredis.Redis.from_pool(pool)


def node_pool(cluster: RedisCluster, node: ClusterNode, **options: Any) -> aioredis.ConnectionPool:
    """A pool of plain connections to one node of ``cluster``, signed in as the cluster client is
    (``options``: the pool's own, e.g. ``max_connections``)."""
    kwargs = cluster.nodes_manager.connection_kwargs  # (with TLS: connection_class and the ssl_ options)
    auth = {k: v for k, v in kwargs.items()
            if k in ("username", "password", "credential_provider", "connection_class") or k.startswith("ssl_")}
    return aioredis.ConnectionPool(host=node.host, port=int(node.port), **auth, **options)


@contextlib.asynccontextmanager
async def shard_subscription(client: Client, channel: str) -> AsyncIterator[PubSub]:
    """A subscription to the shard channel ``channel`` (SSUBSCRIBE) on the node serving its slot now,
    closed on exit. The node ends it if the slot moves away: a caller waiting for a change also
    reads it again now and then."""
    own: aioredis.Redis | None = None
    if isinstance(client, RedisCluster):
        await client.initialize()
        node = client.get_node_from_key(channel)
        if node is None:
            raise rexc.ConnectionError(f"no node serves the slot of {channel} now")
        own = aioredis.Redis.from_pool(node_pool(client, node, max_connections=1))
        pubsub = own.pubsub()
    else:
        pubsub = client.pubsub()
    try:
        await pubsub.ssubscribe(channel)
        yield pubsub
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]
        if own is not None:
            await own.aclose()


def connect_sync(url: str, **options: Any) -> SyncClient:
    """A blocking client for ``url`` (a cluster client on a cluster node), as ``connect``; ``options``
    are redis-py's (``decode_responses=True``, say)."""
    options = {"socket_keepalive": True, "socket_connect_timeout": 5, **options}
    if is_cluster(url):
        return redis.RedisCluster.from_url(url, **options)
    return redis.Redis.from_url(url, **options)


@contextlib.contextmanager
def redis_errors() -> Iterator[None]:
    """Turn Redis errors into ChatErrors: script replies NOTFOUND/CONFLICT keep their meaning.

    Anything else becomes ``internal`` or ``unavailable`` with a fixed message: what
    the storage said is logged, never shown to a client.
    """
    try:
        yield
    except ChatError:
        raise
    except rexc.ResponseError as exc:
        hit = _SCRIPT_REPLY.search(str(exc))
        if hit is not None:
            kind, detail = hit.groups()
            raise _SCRIPT_ERRORS[kind](detail.strip() or kind.lower()) from exc
        log.error("storage error: %s", exc)
        raise Internal("storage error") from exc
    except (rexc.ConnectionError, rexc.TimeoutError, OSError) as exc:
        log.warning("storage unreachable: %s", exc)
        raise Unavailable("storage unreachable; retry later") from exc
    except rexc.RedisError as exc:
        log.error("storage error: %s", exc)
        raise Internal("storage error") from exc


def text(value: object) -> str:
    """A reply as text (our clients return bytes; redis-py types replies loosely)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a bytes or str reply, got {type(value).__name__}")


def texts(values: Iterable[object]) -> list[str]:
    return [text(v) for v in values]


def as_bytes(value: object) -> bytes:
    """A reply as bytes (see ``text``)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise TypeError(f"expected a bytes or str reply, got {type(value).__name__}")
