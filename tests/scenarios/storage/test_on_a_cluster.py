"""The stack on a local Redis Cluster of three Valkey primaries, RQ on a single Valkey of its own
(RQ_REDIS_URL): two tabs on two web processes see each reply's deltas live, gapless and equal to
the saved reply; the index process embeds what they wrote (its walk given each primary its
partitions); the threads' keys spread over every primary; an upload referenced by a message is
counted and held; a workflow run completes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from redis.crc import key_slot

from tests.scenarios.replies.helpers import (
    assert_gapless,
    delta_text,
    new_thread,
    open_tab,
    reply_of,
    watch_args,
)
from tests.support import procs
from tests.support.cluster import local_cluster, local_nodes, migrate_slot, owner_of
from tests.support.faults import ALICE
from tests.support.replies import partition_total, streams_in_flight
from tests.support.stack import Stack, run_stack
from threadline.shared import keys
from threadline.shared.storage.client import connect_sync

pytestmark = pytest.mark.anyio
WORDS = [f"word{i} " for i in range(12)]


@pytest.fixture(scope="module")
def clustered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, list[int]]]:
    tmp = tmp_path_factory.mktemp("cluster")
    with local_cluster(tmp / "nodes") as ports:
        rq, rq_port = procs.start_valkey(tmp / "rq")
        try:
            with run_stack(tmp / "stack", webs=2, workers=2, index=True, redis_url=f"redis://127.0.0.1:{ports[0]}/0",
                           env={"RQ_REDIS_URL": f"redis://127.0.0.1:{rq_port}/0"}) as stack:
                yield stack, ports
        finally:
            procs.stop(rq)


async def test_two_tabs_watch_replies_live_with_the_keys_spread_over_every_primary(
        clustered: tuple[Stack, list[int]]) -> None:
    stack, ports = clustered
    a = await open_tab(stack.webs[0], client_id="a")
    b = await open_tab(stack.webs[1], client_id="b")
    for _ in range(4):  # threads in partitions (and so on primaries) of their own
        stack.script({"kind": "text", "chunks": WORDS, "delay_ms": 10})
        tid = await new_thread(a)
        for tab in (a, b):
            await tab.subscribe(tid, "messages.list", watch_args(tid))
        sent = await a.mutate("messages.send", {"threadId": tid, "prompt": "hello", "agentName": "echo"})
        assert sent["ok"], sent
        finals = []
        for tab in (a, b):
            frame = await tab.wait_result(tid, lambda v: reply_of(v, 1, ("success",)) is not None, timeout=60)
            finals.append(reply_of(frame["value"], 1))
            stream = frame["value"]["streams"][0]
            deltas = tab.deltas(tid, stream["streamId"])
            assert_gapless(deltas)
            assert delta_text(deltas) == "".join(WORDS) == finals[-1]["text"]
        assert finals[0] == finals[1]
    await a.close()
    await b.close()
    sizes = []
    for port in ports:
        with redis.Redis(port=port) as node:
            sizes.append(node.dbsize())
    assert all(sizes), sizes  # every primary holds some of the store
    with connect_sync(stack.redis_url) as store:
        deadline = time.monotonic() + 60
        while partition_total(store, keys.VECTOR_OPS, "llen"):  # the prompts and replies, embedded
            assert time.monotonic() < deadline, (stack.logs / "index.log").read_text()[-3000:]
            time.sleep(0.2)
        assert not streams_in_flight(store)


def test_files_and_a_workflow_run_on_a_cluster(clustered: tuple[Stack, list[int]]) -> None:
    stack, _ = clustered
    with httpx.Client(base_url=stack.web, headers=ALICE, timeout=30) as c:
        f = c.post("/api/files?name=a.txt", content=b"on a cluster").json()
        tid = c.post("/api/threads", json={"title": "files"}).json()["threadId"]
        content = [{"type": "text", "text": "here"}, {"type": "file", "fileId": f["fileId"]}]
        assert c.post(f"/api/threads/{tid}/messages", json={"message": {"content": content}, "generate": False}
                      ).status_code == 201
        assert c.get(f"/api/files/{f['fileId']}").json()["refs"] == 1
        assert c.delete(f"/api/files/{f['fileId']}").status_code == 409
        assert c.delete(f"/api/threads/{tid}").status_code == 200
        assert c.get(f"/api/files/{f['fileId']}").json()["refs"] == 0
        assert c.get(f"/api/files/{f['fileId']}/content").content == b"on a cluster"
        run_id = c.post("/api/workflows", json={"name": "child_sum", "args": [1, 2, 3]}).json()["runId"]
        deadline = time.monotonic() + 60
        while (view := c.get(f"/api/workflows/{run_id}").json())["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, view
            time.sleep(0.1)
        assert view["status"] == "completed" and view["result"] == 6, view
        assert c.get("/api/workflows").json()["page"][0]["runId"] == run_id


def test_a_process_on_a_cluster_needs_a_redis_of_its_own_for_rq(clustered: tuple[Stack, list[int]]) -> None:
    _, ports = clustered
    for argv in (["threadline.workers", "generation"], ["threadline.server", "web"]):
        env = procs.child_env(REDIS_URL=f"redis://127.0.0.1:{ports[1]}/0", AUTH_SECRET="x" * 32)
        done = subprocess.run([sys.executable, "-m", *argv], env=env, cwd=procs.ROOT, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 2 and "set RQ_REDIS_URL" in done.stderr, done.stderr


async def test_a_slot_moved_while_a_reply_streams_loses_and_repeats_nothing(
        clustered: tuple[Stack, list[int]]) -> None:
    """The thread's slot moves to another primary, its keys a few at a time (as a resharding tool
    does), while its reply streams and two tabs on two web processes watch: each tab sees every
    delta once, in order, equal to the saved reply, and the live query goes on after the move."""
    stack, ports = clustered
    words = [f"w{i} " for i in range(50)]
    stack.script({"kind": "text", "chunks": words, "delay_ms": 60})
    a, b = await open_tab(stack.webs[0], client_id="a"), await open_tab(stack.webs[1], client_id="b")
    tid = await new_thread(a)
    for tab in (a, b):
        await tab.subscribe("m", "messages.list", watch_args(tid))
    assert (await a.mutate("messages.send", {"threadId": tid, "prompt": "go", "agentName": "echo"}))["ok"]
    await a.wait(lambda f: f["type"] == "delta" and f["seq"] >= 5, timeout=30)
    slot = key_slot(keys.thread(tid).encode())
    to = next(p for p in ports if p != owner_of(ports, slot))
    assert await asyncio.to_thread(migrate_slot, ports, slot, to) > 5  # the thread's keys went over
    assert owner_of(ports, slot) == to
    finals = []
    for tab in (a, b):
        frame = await tab.wait_result("m", lambda v: reply_of(v, 1, ("success",)) is not None, timeout=60)
        finals.append(reply_of(frame["value"], 1))
        deltas = tab.deltas("m", frame["value"]["streams"][0]["streamId"])
        assert_gapless(deltas)
        assert delta_text(deltas) == "".join(words) == finals[-1]["text"]
        versions = [f["version"] for f in tab.frames if f["type"] == "result" and f["id"] == "m"]
        assert versions == sorted(set(versions))  # no result twice, none going back
    assert finals[0] == finals[1]
    stack.script({"kind": "text", "chunks": ["after "], "delay_ms": 1})
    assert (await b.mutate("messages.send", {"threadId": tid, "prompt": "again", "agentName": "echo"}))["ok"]
    for tab in (a, b):
        await tab.wait_result("m", lambda v: reply_of(v, 2, ("success",)) is not None, timeout=60)
    await a.close()
    await b.close()


def test_a_primary_killed_and_restarted_on_its_aof_keeps_what_it_acknowledged(tmp_path: Path) -> None:
    """A primary of the cluster is SIGKILLed and started again on its data: every message the stack
    acknowledged, on it and on the others, is there; the processes find it again and answer a prompt
    in a thread it holds."""
    with local_nodes(tmp_path / "nodes", persist=True) as nodes:
        rq, rq_port = procs.start_valkey(tmp_path / "rq")
        try:
            with run_stack(tmp_path / "stack", workers=1, redis_url=f"redis://127.0.0.1:{nodes.ports[0]}/0",
                           env={"RQ_REDIS_URL": f"redis://127.0.0.1:{rq_port}/0"}) as stack, \
                    httpx.Client(base_url=stack.web, headers=ALICE, timeout=30) as c:
                threads = [c.post("/api/threads", json={"title": f"t{i}"}).json()["threadId"] for i in range(9)]
                for tid in threads:
                    for j in range(4):
                        c.post(f"/api/threads/{tid}/messages", json={"prompt": f"m{j}", "generate": False}
                               ).raise_for_status()
                victim = owner_of(nodes.ports, key_slot(keys.thread(threads[0]).encode()))
                nodes.kill(nodes.ports.index(victim))
                nodes.restart(nodes.ports.index(victim))
                deadline = time.monotonic() + 60
                while c.get(f"/api/threads/{threads[0]}/messages").status_code != 200:
                    assert time.monotonic() < deadline, "the stack never found the primary again"
                    time.sleep(0.2)
                for tid in threads:
                    page = c.get(f"/api/threads/{tid}/messages?numItems=50").json()["page"]
                    assert sorted(m["text"] for m in page) == ["m0", "m1", "m2", "m3"], tid
                stack.script({"kind": "text", "chunks": ["back "], "delay_ms": 1})
                c.post(f"/api/threads/{threads[0]}/messages", json={"prompt": "again", "agentName": "echo"}
                       ).raise_for_status()
                while not any(m["role"] == "assistant" and m["status"] == "success"
                              for m in c.get(f"/api/threads/{threads[0]}/messages").json()["page"]):
                    assert time.monotonic() < deadline + 60, "no reply after the restart"
                    time.sleep(0.2)
        finally:
            procs.stop(rq)
