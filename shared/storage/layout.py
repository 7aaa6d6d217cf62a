"""The version of the key layout in Redis, checked at start-up, and the migration of older data.

- Layout 1 tagged each entity's keys with its id (``tl:{t:<threadId>}:msgs``, ``tl:{u:<userId>}:...``,
  ``tl:{ns:<namespace>}:...``, ``tl:wf:{<runId>}:<part>``).
- Layout 2 tags them with their partition (shared.keys): ``tl:{p0417}:t:<threadId>:msgs``.
- Layout 3 keeps the app-wide sets of streams in flight and ended one per partition.
- Layout 4 keeps the list of users who created threads one per partition too.
- Layout 5 keeps the app's usage (totals, users by cost, users with a ledger) one per partition.
- Layout 6 keeps the index ops (and the lists index processes took them to) and the set of RAG
  namespaces one per partition.
- Layout 7 keeps each rate-limit rule's state in the partition of its scope (user, agent, team, app).
- Layout 8 adds to each thread the index of its messages not successful (pending, failed).
- Layout 9 keeps each file's record and references in the partition of its id, and the records
  holding a content in the partition of its hash.
- Layout 10 keeps the workflow timers, the index of every run and its owners one per partition, and
  a workflow kind's work pool in the partition of its name (its queue a sorted set).

``migrate`` takes the data one layout up at a time, recording each version as it gets there;
each step is idempotent (a rename keeps the value and the expiry; members are added before the
old set goes), so a run after a crash goes on where it stopped. Every process refuses to start
on data of another layout, with the command to run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator

import redis

from threadline.shared import keys
from threadline.shared.errors import ConfigError
from threadline.shared.records import message_decoder
from threadline.shared.storage.client import SyncClient, connect_sync, text

VERSION = 10
MIGRATE_COMMAND = "threadline migrate"

# layout 1: (SCAN pattern, parser of a key into its layout-2 name or None for a key it cannot read)
_OLD_ENTITY = re.compile(r"tl:\{(t|u|ns):(.*)\}:([^{}]*)", re.S)
_OLD_RUN = re.compile(r"tl:wf:\{(.*)\}:(run|steps|results|inputs|events)", re.S)
_PARTS: dict[str, Callable[[str], str]] = {
    "t": lambda i: keys.thread(i).removesuffix(":thread"),
    "u": lambda i: keys.user_state(i).removesuffix(":state"),
    "ns": lambda i: keys.rag_state(i).removesuffix(":state"),
}


def renamed(old: str) -> str | None:
    """The layout-2 name of a layout-1 key; None for a key of no entity (app-wide keys keep their name)."""
    if hit := _OLD_RUN.fullmatch(old):
        return keys.workflow(hit.group(1), hit.group(2))
    if hit := _OLD_ENTITY.fullmatch(old):
        kind, entity_id, rest = hit.groups()
        return f"{_PARTS[kind](entity_id)}:{rest}"
    return None


def _old_keys(client: SyncClient) -> Iterator[str]:
    for pattern in ("tl:{t:*", "tl:{u:*", "tl:{ns:*", "tl:wf:{*"):
        for raw in client.scan_iter(match=pattern, count=1000):
            name = text(raw)
            if renamed(name) is not None:
                yield name


def stored_version(client: SyncClient) -> int | None:
    raw = client.get(keys.LAYOUT)
    return int(raw) if raw is not None else None


def _split(client: redis.Redis, name: str, entity_of: Callable[[str], str]) -> int:
    """The members of the app-wide sorted set ``tl:<name>`` go to the partition of the entity each
    names (``entity_of``); how many."""
    moved = 0
    old = f"{keys.PREFIX}:{name}"
    for raw, score in client.zscan_iter(old, count=1000):
        member = text(raw)
        client.zadd(keys.part_of(name, entity_of(member)), {member: score})
        moved += 1
    client.delete(old)
    return moved


def _split_stream_sets(client: redis.Redis) -> int:
    """Layout 2 -> 3: streams in flight and ended ("threadId/streamId") to their thread's partition."""
    return sum(_split(client, name, lambda m: m.partition("/")[0]) for name in (keys.ACTIVE_STREAMS, keys.ENDED_STREAMS))


def _split_users(client: redis.Redis) -> int:
    """Layout 3 -> 4: the users who created threads to their own partition."""
    return _split(client, keys.USERS, lambda m: m)


def _split_usage(client: redis.Redis) -> int:
    """Layout 4 -> 5: the users of the app's usage sets to their own partition; the app's totals of
    each period (no longer known per user) to partition 0's part, which readers add to the rest.
    Values are set, not added: run again, the step writes the same."""
    moved = 0
    for raw in list(client.scan_iter(match=f"{keys.PREFIX}:usage:*", count=1000)):
        old = text(raw)
        name = old.removeprefix(f"{keys.PREFIX}:")
        kind = text(client.type(old))
        if kind == "set":
            moved += _split_set(client, name)
        elif kind == "zset":
            moved += _split(client, name, lambda user: user)
        elif kind == "hash":
            for field, amount in client.hscan_iter(old, count=1000):
                client.hset(keys.in_partition(0, name), field, amount)
            client.delete(old)
            moved += 1
        else:
            client.delete(old)
    return moved


def _split_index_ops(client: redis.Redis) -> int:
    """Layout 5 -> 6: the waiting index ops go, in order, to partition 0's list (the index process
    reads every partition; ops taken by a process that is gone now go in front of them); the RAG
    namespaces to their own partition. An op is moved, never copied: a rerun moves what is left."""
    moved = 0
    ops = keys.in_partition(0, keys.VECTOR_OPS)
    for raw in list(client.scan_iter(match=f"{keys.PREFIX}:vec:taken:*", count=1000)):
        while client.lmove(raw, ops, "RIGHT", "LEFT") is not None:
            moved += 1
    while client.lmove(f"{keys.PREFIX}:{keys.VECTOR_OPS}", ops, "LEFT", "RIGHT") is not None:
        moved += 1
    return moved + _split_set(client, keys.RAG_NAMESPACES)


def _move_rate_limits(client: redis.Redis) -> int:
    """Layout 6 -> 7: ``tl:rl:<rule>:<scope>`` (rule names have no ':') to the scope's partition."""
    moved = 0
    for raw in list(client.scan_iter(match=f"{keys.PREFIX}:rl:*", count=1000)):
        old = text(raw)
        rule, _, scope = old.removeprefix(f"{keys.PREFIX}:rl:").partition(":")
        moved += _rename(client, old, keys.rate_limit_rule(rule, scope))
    return moved


def _index_open_messages(client: redis.Redis) -> int:
    """Layout 7 -> 8: each thread's pending and failed messages into its open index; how many."""
    added = 0
    for raw in list(client.scan_iter(match=f"{keys.PREFIX}:*:t:*:msgs", count=1000)):
        name = text(raw)
        thread_id = name.split(":")[-2]
        if keys.messages(thread_id) != name:
            continue
        for message_id, body in client.hscan_iter(name, count=500):
            if message_decoder.decode(body).status == "success":
                continue
            at = client.zscore(keys.message_index(thread_id), message_id)
            if at is not None:
                client.zadd(keys.message_index_open(thread_id), {message_id: at})
                added += 1
    return added


def _split_files(client: redis.Redis) -> int:
    """Layout 8 -> 9: the app-wide hashes of file records, idle files and contents being deleted
    go to each file's (each content's) keys; each message's references, from its thread's file
    index, to the files it references. The old hashes go last: a rerun writes the same again."""
    old = {name: f"{keys.PREFIX}:files{name}" for name in ("", ":refs", ":idle", ":blobs", ":deleting")}
    moved = 0
    for raw_id, body in client.hscan_iter(old[""], count=1000):
        file_id = text(raw_id)
        client.hset(keys.file(file_id), mapping={"rec": body, "refs": 0})
        client.sadd(keys.blob_files(json.loads(body)["hash"]), file_id)
        moved += 1
    for raw_id, since in client.zscan_iter(old[":idle"], count=1000):
        client.zadd(keys.files_idle(text(raw_id)), {raw_id: since})
    for digest, since in client.hscan_iter(old[":deleting"], count=1000):
        client.hset(keys.blob(text(digest)), "deleting", since)
    referenced: set[str] = set()
    for raw in list(client.scan_iter(match=f"{keys.PREFIX}:*:t:*:files", count=1000)):
        name = text(raw)
        thread_id = client.hget(name.removesuffix(":files") + ":thread", "threadId")
        if thread_id is None or keys.thread_files(text(thread_id)) != name:
            continue
        for message_id, ids in client.hscan_iter(name, count=500):
            for file_id in text(ids).split():
                if client.hexists(keys.file(file_id), "rec"):
                    client.hset(keys.file_refs(file_id), f"{text(thread_id)} {text(message_id)}", 1)
                    referenced.add(file_id)
    for file_id in referenced:
        client.hset(keys.file(file_id), "refs", client.hlen(keys.file_refs(file_id)))
    client.delete(*old.values())
    return moved


def _split_workflows(client: redis.Redis) -> int:
    """Layout 9 -> 10: the workflow timers, the index of runs and their owners to each run's
    partition; each work pool to its name's partition, its queue (a list) as a sorted set in the
    same order; the list version of every run starts again per partition."""
    moved = _split(client, keys.WORKFLOW_TIMERS, lambda member: member[2:].partition("|")[0])
    moved += _split(client, keys.WORKFLOW_RUNS, lambda run_id: run_id)
    old = f"{keys.PREFIX}:{keys.WORKFLOW_OWNERS}"
    for run_id, user_id in client.hscan_iter(old, count=1000):
        client.hset(keys.part_of(keys.WORKFLOW_OWNERS, text(run_id)), run_id, user_id)
        moved += 1
    client.delete(old, f"{keys.PREFIX}:{keys.WORKFLOW_RUNS_VERSION}")
    pools = {text(raw).removeprefix(f"{keys.PREFIX}:wf:pool:").removesuffix(":queue")
             for raw in client.scan_iter(match=f"{keys.PREFIX}:wf:pool:*", count=1000)}
    for name in pools:
        running, queue = f"{keys.PREFIX}:wf:pool:{name}", f"{keys.PREFIX}:wf:pool:{name}:queue"
        for run_id in client.smembers(running):
            client.sadd(keys.workflow_pool(name, "running"), run_id)
        for i, run_id in enumerate(client.lrange(queue, 0, -1)):
            client.zadd(keys.workflow_pool(name, "queue"), {text(run_id): i}, nx=True)
        client.delete(running, queue)
        moved += 1
    return moved


def _split_set(client: redis.Redis, name: str) -> int:
    """The members of the app-wide set ``tl:<name>`` go to the partition of the entity each names."""
    old, moved = f"{keys.PREFIX}:{name}", 0
    for member in client.sscan_iter(old, count=1000):
        client.sadd(keys.part_of(name, text(member)), member)
        moved += 1
    client.delete(old)
    return moved


def _rename_entities(client: redis.Redis) -> int:
    """Layout 1 -> 2: every key of an entity to its partition; how many."""
    moved = 0
    for old in list(_old_keys(client)):
        new = renamed(old)
        assert new is not None
        moved += _rename(client, old, new)
    return moved


def _rename(client: redis.Redis, old: str, new: str) -> bool:
    """Rename ``old`` (keeping its value and expiry); False when it is gone since the scan (expired)."""
    try:
        client.rename(old, new)
    except redis.ResponseError as exc:
        if "no such key" not in str(exc).lower():
            raise
        return False
    return True


STEPS: dict[int, Callable[[redis.Redis], int]] = {1: _rename_entities, 2: _split_stream_sets,  # from version n
                                                  3: _split_users, 4: _split_usage, 5: _split_index_ops,
                                                  6: _move_rate_limits, 7: _index_open_messages,
                                                  8: _split_files, 9: _split_workflows}


def _layout_1(client: SyncClient) -> bool:
    return next(_old_keys(client), None) is not None or bool(client.exists(f"{keys.PREFIX}:{keys.ACTIVE_STREAMS}"))


def check(client: SyncClient) -> None:
    """Start-up: ConfigError unless the data is of this layout. Data with no version is taken for
    this layout (and marked so) when no key of an older one is found: a new or empty store."""
    version = stored_version(client)
    if version is None:
        if _layout_1(client):
            raise ConfigError(f"Redis holds data of key layout 1; this version uses layout {VERSION}: stop every "
                              f"process of the old version and run `{MIGRATE_COMMAND}` once")
        client.set(keys.LAYOUT, VERSION, nx=True)
        version = stored_version(client)
    if version != VERSION:
        raise ConfigError(f"Redis holds data of key layout {version}; this version reads layout {VERSION} only"
                          + (f": run `{MIGRATE_COMMAND}`" if version is not None and version < VERSION else
                             ": it was written by a newer version of threadline"))


def migrate(client: SyncClient) -> int:
    """Take the data to this layout, one version at a time; how many keys or members moved.

    Run it with every process stopped. Idempotent: a second run (after a crash) does what is left.
    The layouts before this one were of one node: a cluster's data is of this layout, or refused.
    """
    version = stored_version(client)
    if version is None:
        version = 1 if _layout_1(client) else VERSION
    if version > VERSION:
        raise ConfigError(f"Redis holds data of key layout {version}, newer than this version's {VERSION}")
    moved = 0
    if version < VERSION:
        if isinstance(client, redis.RedisCluster):
            raise ConfigError(f"the cluster holds data of key layout {version}, which was of one node: run "
                              f"`{MIGRATE_COMMAND}` on a single Redis holding it, then move it to the cluster")
        while version < VERSION:
            moved += STEPS[version](client)
            version += 1
            client.set(keys.LAYOUT, version)
    client.set(keys.LAYOUT, VERSION)
    return moved


def check_url(url: str, *, unreachable_ok: bool = False) -> None:
    """``check`` on the Redis at ``url``; with ``unreachable_ok`` a Redis that does not answer is let be."""
    client = connect_sync(url)
    try:
        check(client)
    except (redis.ConnectionError, redis.TimeoutError):
        if not unreachable_ok:
            raise
    finally:
        client.close()
