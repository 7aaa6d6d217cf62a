"""Schedules through real processes: two scheduler (cron) processes run, one dies right after a firing's
action and before its record (crash point schedule:acted); every slot still fires exactly once: as
many prompts (each answered once) and workflow runs as recorded firings, none twice, and the live
list shows them."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.scenarios.replies.helpers import new_thread, open_tab, token
from tests.support import procs
from tests.support.stack import SECRET, Stack, run_stack

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with run_stack(tmp_path_factory.mktemp("schedules"), webs=1, env={"SCHEDULE_LEASE_MS": "2000"}) as s:
        yield s


def start_cron(stack: Stack, name: str, **env: str) -> subprocess.Popen[bytes]:
    with open(stack.logs / f"{name}.log", "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "threadline.workers", "cron"], cwd=procs.ROOT,
                                env=procs.child_env(REDIS_URL=stack.redis_url, AUTH_SECRET=SECRET, **{**stack.env, **env}),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    stack.procs.append(proc)
    return proc


def until(what: str, check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.1)
    raise AssertionError(f"not in {timeout} s: {what}")


def answered(client: httpx.Client, tid: str) -> list[dict[str, Any]] | None:
    """The thread once every prompt has its reply and none is under way: a prompt's reply is written
    by its job, which waits for the thread's earlier replies (seen in 2026-12: a loaded machine read
    the page before the second and third prompts' jobs had begun)."""
    page = client.get(f"/api/threads/{tid}/messages", params={"numItems": 100}).json()["page"]
    asked = {m["order"] for m in page if m["role"] == "user"}
    replied = {m["order"] for m in page if m["role"] == "assistant"}
    done = asked <= replied and all(m["status"] in ("success", "failed") for m in page)
    return page if done else None  # type: ignore[no-any-return]


async def test_each_slot_fires_once_with_two_schedulers_and_one_killed(stack: Stack) -> None:
    crashing = start_cron(stack, "cron-crash", THREADLINE_CRASH_AT="schedule:acted")
    healthy = start_cron(stack, "cron")
    tab = await open_tab(stack.web, client_id="scheduler")
    alice = httpx.Client(base_url=stack.web, headers={"Authorization": f"Bearer {token('alice')}"}, timeout=10)
    try:
        tid = await new_thread(tab)
        await tab.subscribe("s", "schedules.list", {})
        send = await tab.mutate("schedules.create", {
            "name": "tick", "timing": {"everyS": 1},
            "action": {"kind": "send", "threadId": tid, "prompt": "tick", "agentName": "echo"}})
        assert send["ok"], send
        run = alice.post("/api/schedules", json={"name": "sums", "timing": {"everyS": 1},
                                                 "action": {"kind": "workflow", "name": "child_sum", "args": [2, 3]}})
        assert run.status_code == 201, run.text
        ids = (send["value"]["scheduleId"], run.json()["scheduleId"])

        until("the scheduler that dies after acting died", lambda: crashing.poll() is not None)
        assert crashing.returncode == 137

        def fired_of(schedules: list[dict[str, Any]]) -> dict[str, int]:
            return {s["scheduleId"]: s["fired"] for s in schedules}

        def listed() -> dict[str, int]:
            return fired_of(alice.get("/api/schedules").json()["schedules"])

        at_crash = listed()
        # each fires twice more: the one whose firing the dead scheduler acted on has been taken again after
        # its lease and that firing recorded
        until("both go on firing", lambda: all(n >= at_crash[sid] + 2 for sid, n in listed().items()))
        for sid in ids:
            paused = alice.post(f"/api/schedules/{sid}/pause")
            assert paused.status_code == 200 and paused.json()["paused"] is True and paused.json()["nextAt"] is None
        def steady() -> dict[str, int] | None:
            """The counts once a firing under way has ended (none moved in 2 s): a loaded machine can
            take longer than any fixed wait; the lease of the dead scheduler's take ran out long ago."""
            before = listed()
            time.sleep(2)
            return before if before == listed() else None

        fired = until("the paused schedules stop firing", steady)
        try:
            await tab.wait_result("s", lambda v: fired_of(v["schedules"]) == fired)
        except TimeoutError:  # (seen once in 2026-12: which of the two moved tells a late firing from a lost update)
            results = [f["value"] for f in tab.frames if f["type"] == "result" and f["id"] == "s"]
            raise AssertionError(f"the live list {fired_of(results[-1]['schedules']) if results else None} never "
                                 f"became {fired}; now listed: {listed()}") from None

        page = until("every scheduled prompt answered", lambda: answered(alice, tid))
        prompts = [m for m in page if m["role"] == "user"]
        slots = [m["metadata"]["schedule"]["slot"] for m in prompts]
        assert len(prompts) == fired[ids[0]] and len(set(slots)) == len(slots), (fired, slots)
        replies = Counter(m["order"] for m in page if m["role"] == "assistant")
        assert sorted(replies) == sorted(m["order"] for m in prompts) and set(replies.values()) == {1}
        runs = alice.get("/api/workflows", params={"numItems": 100}).json()["page"]
        assert len([r for r in runs if r["name"] == "child_sum"]) == fired[ids[1]]
        time.sleep(1.5)
        assert listed() == fired  # paused: nothing more
    finally:
        alice.close()
        await tab.ws.close()
        procs.stop(healthy)
        procs.stop(crashing)


async def test_a_pause_while_a_dead_schedulers_firing_is_half_done_lets_another_end_it(stack: Stack) -> None:
    """The scheduler dies with the prompt saved and its reply not yet asked for (crash point
    schedule:saved); its owner pauses the schedule before the take's lease runs out. The next scheduler
    ends that firing all the same (the prompt gets its one reply, the firing is counted), then the
    schedule stays paused."""
    crashing = start_cron(stack, "cron-crash-saved", THREADLINE_CRASH_AT="schedule:saved")
    tab = await open_tab(stack.web, client_id="pauser")
    alice = httpx.Client(base_url=stack.web, headers={"Authorization": f"Bearer {token('alice')}"}, timeout=10)
    healthy = None
    try:
        tid = await new_thread(tab)
        made = await tab.mutate("schedules.create", {
            "name": "once", "timing": {"everyS": 1},
            "action": {"kind": "send", "threadId": tid, "prompt": "tick", "agentName": "echo"}})
        assert made["ok"], made
        sid = made["value"]["scheduleId"]
        until("the scheduler that dies after saving the prompt died", lambda: crashing.poll() is not None)
        assert crashing.returncode == 137
        paused = alice.post(f"/api/schedules/{sid}/pause")
        assert paused.status_code == 200 and paused.json()["paused"] is True and paused.json()["nextAt"] is None
        page = alice.get(f"/api/threads/{tid}/messages", params={"numItems": 100}).json()["page"]
        assert [m["role"] for m in page] == ["user"], page  # kept, unanswered: the dead one's half
        healthy = start_cron(stack, "cron-after-pause")
        page = until("the half-done firing ended", lambda: answered(alice, tid))
        assert sorted(m["role"] for m in page) == ["assistant", "user"], page
        def schedule() -> dict[str, Any]:
            return next(s for s in alice.get("/api/schedules").json()["schedules"] if s["scheduleId"] == sid)

        until("the firing recorded", lambda: schedule()["fired"] == 1)  # (just after its action: maybe after the reply)
        assert schedule()["paused"] is True, schedule()
        time.sleep(2.5)  # past the next slots: paused, nothing more
        assert schedule()["fired"] == 1
        assert len(alice.get(f"/api/threads/{tid}/messages", params={"numItems": 100}).json()["page"]) == 2
    finally:
        alice.close()
        await tab.ws.close()
        if healthy is not None:
            procs.stop(healthy)
        procs.stop(crashing)


async def test_a_schedule_is_refused_for_a_thread_not_writable_and_deleted_by_its_owner_only(stack: Stack) -> None:
    tab = await open_tab(stack.web, client_id="owner")
    try:
        tid = await new_thread(tab)
        action = {"kind": "send", "threadId": tid, "prompt": "hi"}
        with httpx.Client(base_url=stack.web, headers={"Authorization": f"Bearer {token('bob')}"}, timeout=10) as bob:
            r = bob.post("/api/schedules", json={"name": "x", "timing": {"everyS": 60}, "action": action})
            assert r.status_code == 404, r.text
            for bad in ({"name": "x", "timing": {"cron": "nope"}, "action": action},
                        {"name": "x", "timing": {"everyS": 0.5}, "action": action},
                        {"name": "x", "timing": {"everyS": 60}, "action": {"kind": "shell", "cmd": "ls"}}):
                assert bob.post("/api/schedules", json=bad).status_code == 400, bad
            made = await tab.mutate("schedules.create", {"name": "daily", "timing": {"cron": "0 8 * * 1-5",
                                                                                     "timeZone": "Europe/Lisbon"},
                                                         "action": action})
            assert made["ok"], made
            sid = made["value"]["scheduleId"]
            assert bob.delete(f"/api/schedules/{sid}").status_code == 404
            assert bob.post(f"/api/schedules/{sid}/pause").status_code == 404
        gone = await tab.mutate("schedules.delete", {"scheduleId": sid})
        assert gone["ok"] and gone["value"] == {"deleted": True}
    finally:
        await tab.ws.close()
