"""Prometheus metrics: the web process's /metrics and a generation worker's exporter, parsed."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.scenarios.replies.helpers import new_thread, open_tab, reply_of, watch_args
from tests.support.stack import run_stack
from tests.support.wsutil import Tab
from threadline import Threadline
from threadline.shared.storage.embedded import free_port

pytestmark = pytest.mark.anyio


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text page: (name, sorted labels) -> value."""
    text = httpx.get(url, timeout=5).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict, metric: str, **labels: str) -> float:  # type: ignore[type-arg]
    return samples.get((metric, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.timeout(120)
async def test_web_and_worker_metrics_count_what_happened(tmp_path: Path) -> None:
    port = free_port()
    with run_stack(tmp_path, worker=False) as stack:
        stack.start_worker(WORKERS="1", METRICS_PORT=str(port))
        tab: Tab = await open_tab(stack.web, client_id="metrics")
        tid = await new_thread(tab)
        await tab.subscribe("m", "messages.list", watch_args(tid))
        await tab.mutate("messages.send", {"threadId": tid, "prompt": "count me", "agentName": "mock"})
        await tab.wait_result("m", lambda v: reply_of(v, 1, ("success",)) is not None)
        web = scrape(f"{stack.web}/metrics")
        assert value(web, "threadline_ws_connections") == 1
        assert value(web, "threadline_ws_subscriptions") == 1
        assert value(web, "threadline_mutations_total", name="messages.send", outcome="ok") == 1
        assert value(web, "threadline_live_query_runs_total") >= 2
        assert value(web, "threadline_deltas_relayed_total") >= 1
        assert value(web, "threadline_ws_frames_sent_total") >= 3
        assert value(web, "threadline_fanout_seconds_count") >= 1
        assert ("threadline_queue_depth", (("queue", "generation"),)) in web
        deadline = time.monotonic() + 10
        while True:  # the job's own bookkeeping ends a moment after the reply is saved
            worker = scrape(f"http://127.0.0.1:{port}/metrics")
            if value(worker, "threadline_generations_total", agent="mock", outcome="finished") == 1:
                break
            assert time.monotonic() < deadline, worker
            time.sleep(0.1)
        assert value(worker, "threadline_model_call_seconds_count", provider="mock", model="mock") >= 1
        assert value(worker, "threadline_tokens_total", provider="mock", model="mock", kind="completion") > 0
        assert value(worker, "threadline_generations_in_flight") == 0
        await tab.close()
        async with Threadline(stack.settings(APP_MODULE="tests.support.agents")) as tl:
            run_id = await tl.start_workflow("retrying", "metrics", {"failTimes": 1})
            assert (await tl.wait_workflow(run_id, 30)).status == "completed"
        deadline = time.monotonic() + 10
        while True:  # the step's job counts once its outcome is journaled
            worker = scrape(f"http://127.0.0.1:{port}/metrics")
            if value(worker, "threadline_workflow_steps_total", workflow="retrying", outcome="done") >= 1:
                break
            assert time.monotonic() < deadline, worker
            time.sleep(0.1)
        assert value(worker, "threadline_workflow_steps_total", workflow="retrying", outcome="retry") == 1
        assert value(worker, "threadline_workflow_passes_total", outcome="finished") == 1
        assert value(worker, "threadline_workflow_step_seconds_count", workflow="retrying") >= 2


@pytest.mark.timeout(120)
async def test_log_records_carry_their_request_and_job_ids(tmp_path: Path) -> None:
    import json

    with run_stack(tmp_path, env={"LOG_JSON": "true"}) as stack:
        tab: Tab = await open_tab(stack.web, client_id="logs")
        tid = await new_thread(tab)
        await tab.subscribe("m", "messages.list", watch_args(tid))
        stack.script({"kind": "tools", "calls": [{"name": "boom", "arguments": '{"city": "Oslo"}'}]},
                     {"kind": "text", "chunks": ["ok"]})
        await tab.mutate("messages.send", {"threadId": tid, "prompt": "use the tool", "agentName": "tools"})
        await tab.wait_result("m", lambda v: reply_of(v, 1, ("success",)) is not None)
        r = httpx.get(f"{stack.web}/api/threads/{tid}", headers={"X-Request-Id": "req-abc-123"})
        assert r.headers["x-request-id"] == "req-abc-123"
        await tab.close()

        def records(name: str) -> list[dict]:  # type: ignore[type-arg]
            out = []
            for line in (tmp_path / name).read_text().splitlines():
                if line.startswith("{"):
                    out.append(json.loads(line))
            return out

        deadline = time.monotonic() + 10
        while not any(rec.get("requestId") == "req-abc-123" for rec in records("web0.log")):
            assert time.monotonic() < deadline, records("web0.log")[-5:]
            time.sleep(0.1)
        deadline = time.monotonic() + 20  # (the tab saw the tool-call step: the tool may still be running)
        while not (tool_logs := [rec for rec in records("worker.log") if "tool boom raised" in rec["msg"]]):
            assert time.monotonic() < deadline, records("worker.log")[-5:]
            time.sleep(0.1)
        assert tool_logs and tool_logs[0]["jobId"].startswith("gen-") and tool_logs[0]["process"] == "worker"
