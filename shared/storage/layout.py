"""The version of the key layout in Redis, checked at start-up, and the migration of older data.

Layout 1 tagged each entity's keys with its id (``tl:{t:<threadId>}:msgs``, ``tl:{u:<userId>}:...``,
``tl:{ns:<namespace>}:...``, ``tl:wf:{<runId>}:<part>``); layout 2 tags them with their partition
(shared.keys): ``tl:{p0417}:t:<threadId>:msgs``. ``migrate`` renames every key of layout 1 to its
layout-2 name (a rename keeps the value and the expiry) and then records the version; run again
after a crash, it goes on where it stopped. Every process refuses to start on data of another
layout, with the command to run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import redis

from threadline.shared import keys
from threadline.shared.errors import ConfigError

VERSION = 2
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


def _old_keys(client: redis.Redis) -> Iterator[str]:
    for pattern in ("tl:{t:*", "tl:{u:*", "tl:{ns:*", "tl:wf:{*"):
        for raw in client.scan_iter(match=pattern, count=1000):
            name = raw.decode() if isinstance(raw, bytes) else str(raw)
            if renamed(name) is not None:
                yield name


def stored_version(client: redis.Redis) -> int | None:
    raw = client.get(keys.LAYOUT)
    return int(raw) if raw is not None else None


def check(client: redis.Redis) -> None:
    """Start-up: ConfigError unless the data is of this layout. Data with no version is taken for
    this layout (and marked so) when no key of an older one is found: a new or empty store."""
    version = stored_version(client)
    if version is None:
        if next(_old_keys(client), None) is not None:
            raise ConfigError(f"Redis holds data of key layout 1; this version uses layout {VERSION}: stop every "
                              f"process of the old version and run `{MIGRATE_COMMAND}` once")
        client.set(keys.LAYOUT, VERSION, nx=True)
        version = stored_version(client)
    if version != VERSION:
        raise ConfigError(f"Redis holds data of key layout {version}; this version reads layout {VERSION} only"
                          + (f": run `{MIGRATE_COMMAND}`" if version is not None and version < VERSION else
                             ": it was written by a newer version of threadline"))


def migrate(client: redis.Redis) -> int:
    """Rename every key of layout 1 to its layout-2 name and record layout 2; how many keys moved.

    Run it with every process stopped. Idempotent: a second run (after a crash) renames what is left.
    """
    version = stored_version(client)
    if version is not None and version > VERSION:
        raise ConfigError(f"Redis holds data of key layout {version}, newer than this version's {VERSION}")
    moved = 0
    for old in list(_old_keys(client)):
        new = renamed(old)
        assert new is not None
        try:
            client.rename(old, new)
        except redis.ResponseError as exc:  # gone since the scan (expired): nothing to move
            if "no such key" not in str(exc).lower():
                raise
            continue
        moved += 1
    client.set(keys.LAYOUT, VERSION)
    return moved


def check_url(url: str, *, unreachable_ok: bool = False) -> None:
    """``check`` on the Redis at ``url``; with ``unreachable_ok`` a Redis that does not answer is let be."""
    client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
    try:
        check(client)
    except (redis.ConnectionError, redis.TimeoutError):
        if not unreachable_ok:
            raise
    finally:
        client.close()
