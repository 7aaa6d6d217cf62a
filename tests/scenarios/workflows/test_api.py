"""Workflows over the wire: start, watch, send events and cancel over WebSocket and HTTP, between
real processes; a resent start starts nothing more; another user's run is not found."""

from __future__ import annotations

import httpx
import pytest

from tests.scenarios.replies.helpers import open_tab
from tests.scenarios.workflows.conftest import release, wait_for
from tests.support.stack import SECRET, Stack
from threadline import Threadline
from threadline.shared.auth import mint

pytestmark = pytest.mark.anyio


def headers(user: str, **claims: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(SECRET, user, **claims)}"}  # type: ignore[arg-type]


async def test_a_tab_starts_a_run_and_watches_its_steps_live_to_the_end(tl: Threadline, flow: Stack) -> None:
    tab = await open_tab(flow.web, "alice")
    try:
        runs = await tab.subscribe("runs", "workflows.list", {})
        assert runs["type"] == "result"
        started = await tab.mutate("workflows.start", {"name": "waiter", "args": {"timeout": 60}}, "start-1")
        assert started["ok"], started
        run_id = started["value"]["runId"]
        again = await tab.mutate("workflows.start", {"name": "waiter", "args": {"timeout": 60}}, "start-1")
        assert again["value"]["runId"] == run_id  # the resent request: no second run
        await tab.wait_result("runs", lambda v: [r["runId"] for r in v["page"]] == [run_id])
        await tab.subscribe("run", "workflows.get", {"runId": run_id})
        await tab.wait_result("run", lambda v: v["steps"] and v["steps"][0]["status"] == "waiting")
        sent = await tab.mutate("workflows.sendEvent", {"runId": run_id, "name": "approval", "payload": "ok"})
        assert sent["value"] == {"delivered": True, "stepId": "0"}
        done = await tab.wait_result("run", lambda v: v["status"] == "completed")
        assert done["value"]["result"] == "ok" and done["value"]["steps"][0]["result"] == "ok"
        await tab.wait_result("runs", lambda v: v["page"] and v["page"][0]["status"] == "completed")
    finally:
        await tab.close()


async def test_another_users_run_cannot_be_read_signalled_or_canceled(tl: Threadline, flow: Stack) -> None:
    run_id = await tl.start_workflow("forever", "alice")
    tab = await open_tab(flow.web, "mallory")
    try:
        refused = await tab.subscribe("run", "workflows.get", {"runId": run_id})
        assert refused["type"] == "error" and refused["code"] == "not_found"
        for name, args in (("workflows.cancel", {"runId": run_id}),
                           ("workflows.sendEvent", {"runId": run_id, "name": "never", "payload": 1})):
            frame = await tab.mutate(name, args)
            assert not frame["ok"] and frame["error"]["code"] == "not_found"
    finally:
        await tab.close()
    async with httpx.AsyncClient(base_url=flow.web) as http:
        assert (await http.get(f"/api/workflows/{run_id}", headers=headers("mallory"))).status_code == 404
        assert (await http.post(f"/api/workflows/{run_id}/cancel", headers=headers("mallory"))).status_code == 404
        assert (await http.get(f"/api/workflows/{run_id}", headers=headers("ops", admin=True))).status_code == 200
    assert (await tl.workflow_run(run_id)).status == "running"
    await tl.cancel_workflow(run_id)
    release(flow, "forever")


async def test_the_http_api_starts_signals_cancels_and_lists_runs(tl: Threadline, flow: Stack) -> None:
    alice = headers("alice")
    async with httpx.AsyncClient(base_url=flow.web) as http:
        bad = await http.post("/api/workflows", json={"name": "child_sum", "args": "not a list"}, headers=alice)
        assert bad.status_code == 400 and "bad args" in bad.json()["message"]
        private = await http.post("/api/workflows", json={"name": "internal"}, headers=alice)
        assert private.status_code == 403 and "server only" in private.json()["message"]
        unknown = await http.post("/api/workflows", json={"name": "nope"}, headers=alice)
        assert unknown.status_code == 404 and "known:" in unknown.json()["message"]
        first = await http.post("/api/workflows", json={"name": "forever"}, headers={**alice, "Idempotency-Key": "a1"})
        again = await http.post("/api/workflows", json={"name": "forever"}, headers={**alice, "Idempotency-Key": "a1"})
        assert first.status_code == again.status_code == 201
        run_id = first.json()["runId"]
        assert again.json()["runId"] == run_id
        keyed = await http.post("/api/workflows", json={"name": "waiter", "args": {}, "key": "order-7"}, headers=alice)
        same = await http.post("/api/workflows", json={"name": "waiter", "args": {}, "key": "order-7"}, headers=alice)
        assert keyed.json()["runId"] == same.json()["runId"] and same.json()["created"] is False
        assert await tl.start_workflow("waiter", "alice", {}, key="order-7") == keyed.json()["runId"]  # one key space
        # this run's own step (the marker alone may be an earlier test's canceled run whose step began late)
        await wait_for(tl, run_id, lambda v: bool(v.steps) and v.steps[0].status == "running")
        kept = await http.post(f"/api/workflows/{run_id}/events", json={"name": "later", "payload": {"x": 1}},
                               headers=alice)
        assert kept.json() == {"delivered": False, "stepId": None}
        canceled = await http.post(f"/api/workflows/{run_id}/cancel", headers=alice)
        assert canceled.json()["canceled"] is True
        view = (await http.get(f"/api/workflows/{run_id}", headers=alice)).json()
        assert view["status"] == "canceled" and view["steps"][0]["status"] == "canceled"
        assert view["error"]["message"] == "canceled by alice"
        late = await http.post(f"/api/workflows/{run_id}/events", json={"name": "x"}, headers=alice)
        assert late.status_code == 409
        listed = (await http.get("/api/workflows?numItems=10", headers=alice)).json()
        assert run_id in [r["runId"] for r in listed["page"]]
        everyone = (await http.get("/api/admin/workflows", headers=headers("ops", admin=True))).json()
        assert run_id in [r["runId"] for r in everyone["page"]]
        assert (await http.get("/api/admin/workflows", headers=alice)).status_code == 403
    release(flow, "forever")
    await tl.cancel_workflow(keyed.json()["runId"])
