"""Data written before the partitioned key layout keeps working after the upgrade: every process
refuses to start on it with the command to run, ``threadline migrate`` moves every key (twice: the
second run moves none), and the product then serves the same threads, replies, usage, documents
and workflow runs, and goes on with them."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.support import procs
from tests.support.stack import SECRET, Stack, run_stack
from tests.support.store import CLUSTER, settings_for, single_node, store_server, sync_client
from threadline import Threadline
from threadline.shared import keys
from threadline.shared.auth import mint
from threadline.shared.errors import ConfigError
from threadline.shared.storage import layout

ALICE = {"Authorization": f"Bearer {mint(SECRET, 'ali:ce')}"}  # a ':' in a user id is escaped in key names
ADMIN = {"Authorization": f"Bearer {mint(SECRET, 'ops', admin=True)}"}
_PART = re.compile(r"tl:\{p\d{4}\}:(?!(t|u|ns|wf):).*", re.S)
_NEW = re.compile(r"tl:\{p\d{4}\}:(t|u|ns|wf):([^:]*):(.*)", re.S)


def to_layout_1(name: str) -> str | None:
    """The name a key of this layout had in layout 1 (None: an app-wide key, unchanged)."""
    hit = _NEW.fullmatch(name)
    if hit is None:
        return None
    kind, escaped, rest = hit.groups()
    entity = escaped.replace("%3A", ":").replace("%25", "%")
    return f"tl:wf:{{{entity}}}:{rest}" if kind == "wf" else f"tl:{{{kind}:{entity}}}:{rest}"


def test_names_of_layout_1_are_read_back() -> None:
    for name in (keys.messages("t01"), keys.stream_log("t01", "t01.s2"), keys.usage_totals("a:b%c", "2026-12"),
                 keys.outcome("u}:x", "ab12"), keys.rag_chunks("team:deck", "a/b.md", 3), keys.workflow("wf1", "steps")):
        old = to_layout_1(name)
        assert old is not None and old != name
        assert layout.renamed(old) == name
    assert layout.renamed("tl:streams:active") is None


def _snapshot(stack: Stack, tid: str, run_id: str) -> dict[str, Any]:
    get = lambda path, h=ALICE: httpx.get(f"{stack.web}{path}", headers=h).json()
    return {
        "messages": get(f"/api/threads/{tid}/messages?numItems=50")["page"],
        "threads": [t["threadId"] for t in get("/api/threads")["page"]],
        "usage": get("/api/usage")["totals"],
        "app usage": get("/api/usage?userId=*", ADMIN),
        "documents": [d["key"] for d in get("/api/rag/global/documents", ADMIN)["page"]],
        "run": get(f"/api/workflows/{run_id}")["status"],
    }


def _until(predicate: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.05)


def _answered(stack: Stack, tid: str, count: int) -> bool:
    page = httpx.get(f"{stack.web}/api/threads/{tid}/messages?numItems=50", headers=ALICE).json()["page"]
    return sum(m["role"] == "assistant" and m["status"] == "success" for m in page) == count


def _members(client: redis.Redis, name: str) -> dict[str, float]:
    """The members of an app-wide sorted set kept one per partition, with their scores."""
    return {m: score for key in keys.every_partition(name) for m, score in client.zrange(key, 0, -1, withscores=True)}


def _ops(client: redis.Redis) -> list[bytes]:
    return [op for key in keys.every_partition(keys.VECTOR_OPS) for op in client.lrange(key, 0, -1)]


def _command(url: str, *argv: str) -> subprocess.CompletedProcess[str]:
    env = procs.child_env(REDIS_URL=url, AUTH_SECRET=SECRET)
    return subprocess.run([sys.executable, "-m", *argv], env=env, cwd=procs.ROOT, capture_output=True, text=True,
                          timeout=60)


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with store_server(tmp_path / "store") as url:
        yield url


@single_node  # (the old layouts were of one node)
def test_data_of_layout_1_is_migrated_and_served_as_before(tmp_path: Path, store: str) -> None:
    with run_stack(tmp_path / "before", workers=1, redis_url=store) as stack:
        tid = httpx.post(f"{stack.web}/api/threads", json={"title": "kept"}, headers=ALICE).json()["threadId"]
        r = httpx.post(f"{stack.web}/api/threads/{tid}/messages", json={"prompt": "hello", "agentName": "mock"},
                       headers=ALICE)
        assert r.status_code == 201, r.text
        _until(lambda: _answered(stack, tid, 1), "the first reply")
        doc = {"key": "ferry.md", "title": "Ferry", "content": "# Ferry\nIt leaves at seven."}
        assert httpx.post(f"{stack.web}/api/rag/global/documents", json=doc, headers=ADMIN).status_code == 202
        run_id = httpx.post(f"{stack.web}/api/workflows", json={"name": "waiter", "args": {}},
                            headers=ALICE).json()["runId"]
        _until(lambda: _snapshot(stack, tid, run_id)["run"] == "running", "the run waits for its event")
        before = _snapshot(stack, tid, run_id)
    assert before["usage"]["calls"] >= 1 and before["threads"] == [tid]

    client = redis.Redis.from_url(store, decode_responses=True)
    split = {name: _members(client, name) for name in (keys.ENDED_STREAMS, keys.USERS)}
    raw = redis.Redis.from_url(store)  # (ops are msgpack)
    ops = _ops(raw)
    assert len(ops) >= 3  # the prompt, the reply, the document (no index process ran)
    assert len(split[keys.ENDED_STREAMS]) == 1  # the reply's stream, listed until its grace ends
    assert list(split[keys.USERS]) == ["ali:ce"]
    moved = 0
    merged_hashes: set[str] = set()
    for name in list(client.scan_iter(match="tl:*", count=1000)):  # back to how layout 1 named them
        if (old := to_layout_1(name)) is not None:
            client.rename(name, old)
            moved += 1
        elif _PART.fullmatch(name):  # one partition's part of an app-wide set: back into one
            whole = f"tl:{name.split(':', 2)[2]}"
            kind = client.type(name)
            if kind == "zset":
                moved += client.zcard(name)
                client.zunionstore(whole, [name, whole])
            elif kind == "set":
                moved += client.scard(name)
                client.sunionstore(whole, [name, whole])
            elif kind == "list":  # index ops
                while raw.lmove(name, whole, "LEFT", "RIGHT") is not None:
                    moved += 1
            elif kind == "string":  # a counter (the list version of every run)
                client.incrby(whole, int(client.get(name) or 0))
            else:
                assert kind == "hash", name
                moved += whole not in merged_hashes
                merged_hashes.add(whole)
                for field, value in client.hgetall(name).items():
                    if value.lstrip("-").isdigit():  # a total
                        client.hincrby(whole, field, int(value))
                    else:  # the owner of a run
                        client.hset(whole, field, value)
                        moved += 1
            client.delete(name)
    client.delete(keys.LAYOUT)
    assert moved > 20

    for argv in (["threadline.server", "web"], ["threadline.workers", "generation"]):
        refused = _command(store, *argv)
        assert refused.returncode == 2 and "threadline migrate" in refused.stderr, refused.stderr
    first, second = _command(store, "threadline", "migrate"), _command(store, "threadline", "migrate")
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert f"{moved} key(s) moved" in first.stdout and "0 key(s) moved" in second.stdout
    assert client.get(keys.LAYOUT) == str(layout.VERSION)
    assert not [k for k in client.scan_iter(match="tl:*", count=1000) if layout.renamed(k)]
    for name, members in split.items():
        assert _members(client, name) == members and not client.exists(f"tl:{name}")
    assert sorted(_ops(raw)) == sorted(ops) and not client.exists(f"tl:{keys.VECTOR_OPS}")

    with run_stack(tmp_path / "after", workers=1, redis_url=store) as stack:
        assert _snapshot(stack, tid, run_id) == before
        r = httpx.post(f"{stack.web}/api/threads/{tid}/messages", json={"prompt": "again", "agentName": "mock"},
                       headers=ALICE)
        assert r.status_code == 201, r.text
        _until(lambda: _answered(stack, tid, 2), "a reply after the upgrade")
        orders = [m["order"] for m in httpx.get(f"{stack.web}/api/threads/{tid}/messages?numItems=50",
                                                headers=ALICE).json()["page"]]
        first_order = before["messages"][0]["order"]
        assert sorted(set(orders)) == [first_order, first_order + 1]  # the counters came along: the prompt is next
        sent = httpx.post(f"{stack.web}/api/workflows/{run_id}/events", json={"name": "approval", "payload": "yes"},
                          headers=ALICE).json()
        assert sent["delivered"] is True
        _until(lambda: _snapshot(stack, tid, run_id)["run"] == "completed", "the run ends with its event")


def test_a_store_of_a_newer_layout_is_refused(store: str) -> None:
    sync_client(store).set(keys.LAYOUT, layout.VERSION + 1)
    refused = _command(store, "threadline.workers", "generation")
    assert refused.returncode == 2 and "newer version" in refused.stderr
    assert _command(store, "threadline", "migrate").returncode == 2
    with pytest.raises(ConfigError, match="newer version"):  # the Python API refuses it too
        Threadline(settings_for(store))


def test_migrate_on_this_layout_moves_nothing_and_a_cluster_of_an_older_one_is_refused(store: str) -> None:
    client = sync_client(store)
    client.set(keys.LAYOUT, layout.VERSION)
    done = _command(store, "threadline", "migrate")
    assert done.returncode == 0 and "0 key(s) moved" in done.stdout, done.stderr
    if CLUSTER:  # the older layouts were of one node
        client.set(keys.LAYOUT, layout.VERSION - 1)
        refused = _command(store, "threadline", "migrate")
        assert refused.returncode == 2 and "which was of one node" in refused.stderr, refused.stderr
    client.close()
