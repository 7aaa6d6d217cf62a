"""scripts/run's launcher: embedded Valkey, web and workers; data survive a restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import msgspec
import pytest
import redis

from tests.conftest import TEST_SECRET, token_for
from tests.scenarios.replies.helpers import new_thread, open_tab, reply_of, token, watch_args
from tests.support.procs import ROOT, child_env
from tests.support.stack import SECRET
from threadline.shared.storage.embedded import free_port

pytestmark = pytest.mark.any_store  # (the launcher starts a store of its own: the same in the cluster pass)


def launch(data_dir: Path, port: int, log: Path, *, secret: str | None = TEST_SECRET,
           **extra: str) -> subprocess.Popen[bytes]:
    """``python -m threadline.server.launch`` with its embedded Valkey; ``secret=None``: dev mode."""
    env = child_env(DATA_DIR=str(data_dir), PORT=str(port), **extra)
    env.pop("REDIS_URL", None)
    env.pop("RQ_REDIS_URL", None)  # (its RQ is its own store's, or its own Valkey beside its cluster)
    env.pop("AUTH_SECRET", None)
    if secret is not None:
        env["AUTH_SECRET"] = secret
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "threadline.server.launch"], env=env, cwd=ROOT,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )


def wait_healthy(base: str, proc: subprocess.Popen[bytes], timeout: float = 60, path: str = "/healthz") -> None:
    """Until ``path`` answers 200 (``/readyz``: workers and the index are up too)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "launcher exited early"
        try:
            if httpx.get(f"{base}{path}", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{path} never answered 200")


def interrupt(proc: subprocess.Popen[bytes]) -> int:
    os.killpg(proc.pid, signal.SIGINT)
    try:
        return proc.wait(30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_data_written_through_run_survive_a_restart(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token_for('alice')}"}
    log = tmp_path / "launch.log"
    proc = launch(tmp_path / "data", port, log)
    try:
        wait_healthy(base, proc)
        tid = httpx.post(f"{base}/api/threads", json={"title": "kept"}, headers=headers).json()["threadId"]
        httpx.post(f"{base}/api/threads/{tid}/messages", json={"prompt": "remember me", "generate": False},
                   headers=headers).raise_for_status()
    finally:
        interrupt(proc)
    assert "worker started" in log.read_text() and "redis started" in log.read_text()
    assert "Traceback" not in log.read_text()  # Ctrl-C stops everything quietly, the store last
    proc = launch(tmp_path / "data", port, log)
    try:
        wait_healthy(base, proc)
        assert httpx.get(f"{base}/api/threads/{tid}", headers=headers).json()["title"] == "kept"
        page = httpx.get(f"{base}/api/threads/{tid}/messages", headers=headers).json()["page"]
        assert [m["text"] for m in page] == ["remember me"]
    finally:
        interrupt(proc)


def children(pid: int) -> dict[str, int]:
    """The launcher's processes by kind (redis, web, worker, index)."""
    kinds = {"valkey": "redis", "server web": "web", "worker-pool": "worker", "workers generation": "worker",
             "workers index": "index"}
    found: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) != pid:
            continue
        for needle, kind in kinds.items():
            if needle in cmdline:
                found[kind] = int(entry.name)
    return found


def test_run_restarts_every_kind_of_process_that_dies(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token_for('alice')}"}
    log = tmp_path / "launch.log"
    proc = launch(tmp_path / "data", port, log)
    try:
        wait_healthy(base, proc, path="/readyz")
        tid = httpx.post(f"{base}/api/threads", json={"title": "kept"}, headers=headers).json()["threadId"]
        for kind in ("redis", "web", "worker", "index"):
            deadline = time.monotonic() + 30
            while set(before := children(proc.pid)) != {"redis", "web", "worker", "index"}:
                assert time.monotonic() < deadline, before  # (a process may be restarting after the last kill)
                time.sleep(0.1)
            wait_healthy(base, proc, path="/readyz")
            os.kill(before[kind], signal.SIGKILL)
            deadline = time.monotonic() + 30
            while children(proc.pid).get(kind) in (None, before[kind]):
                assert time.monotonic() < deadline, f"{kind} was not restarted"
                time.sleep(0.1)
            wait_healthy(base, proc, path="/readyz")
            assert httpx.get(f"{base}/api/threads/{tid}", headers=headers).json()["title"] == "kept"
        # and the restarted stack answers a prompt end to end
        sent = httpx.post(f"{base}/api/threads/{tid}/messages", json={"prompt": "still there?"}, headers=headers)
        assert sent.status_code == 201
        deadline = time.monotonic() + 30
        while True:
            page = httpx.get(f"{base}/api/threads/{tid}/messages", headers=headers).json()["page"]
            if any(m["role"] == "assistant" and m["status"] == "success" for m in page):
                break
            assert time.monotonic() < deadline, page
            time.sleep(0.2)
    finally:
        interrupt(proc)
    text = log.read_text()
    for kind in ("redis", "web", "worker", "index"):
        assert f"{kind} exited with code" in text


def test_run_without_auth_secret_is_dev_mode_and_records_its_redis(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = launch(tmp_path / "data", port, tmp_path / "launch.log", secret=None)
    env = child_env(DATA_DIR=str(tmp_path / "data"), PORT=str(port))
    env.pop("AUTH_SECRET", None)
    try:
        wait_healthy(base, proc)
        dev = httpx.get(f"{base}/api/dev-token")
        assert dev.status_code == 200 and dev.json()["userId"] == "dev"  # the chat page signs in with it
        assert httpx.get(f"{base}/api/threads", headers={"Authorization": f"Bearer {dev.json()['token']}"}
                         ).status_code == 200
        # the Python API and tools on the same DATA_DIR find the running stack's Redis
        from threadline.shared.config import load_settings

        found = load_settings({"DATA_DIR": str(tmp_path / "data")}).redis_url
        assert found != "redis://127.0.0.1:6379/0" and httpx.get(f"{base}/readyz").json()["redis"]
        token = subprocess.run([sys.executable, "-m", "threadline.server", "token", "alice"], env=env, cwd=ROOT,
                               capture_output=True, text=True)
        assert token.returncode == 0
        assert httpx.get(f"{base}/api/threads", headers={"Authorization": f"Bearer {token.stdout.strip()}"}
                         ).status_code == 200
    finally:
        interrupt(proc)
    assert not (tmp_path / "data" / "stack.json").exists()


def test_config_errors_are_one_line_exit_2_and_never_show_a_secret(tmp_path: Path) -> None:
    cases = [({"AUTH_SECRET": "too-short-secret-value"}, "AUTH_SECRET"), ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL"),
             ({"PORT": "eighty"}, "PORT")]
    for extra, name in cases:
        env = child_env(DATA_DIR=str(tmp_path / "data"), **extra)
        env.pop("REDIS_URL", None)
        done = subprocess.run([sys.executable, "-m", "threadline.server.launch"], env=env, cwd=ROOT, capture_output=True,
                              text=True, timeout=60)
        lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        assert done.returncode == 2 and len(lines) == 1 and name in lines[0], lines
        assert "too-short-secret-value" not in lines[0]
    env = child_env(DATA_DIR=str(tmp_path / "elsewhere"))
    env.pop("AUTH_SECRET", None)
    minted = subprocess.run([sys.executable, "-m", "threadline.server", "token", "alice"], env=env, cwd=ROOT,
                            capture_output=True, text=True)
    assert minted.returncode == 2 and "no AUTH_SECRET" in minted.stderr  # no silent new secret


@pytest.mark.anyio
async def test_run_with_a_local_cluster_answers_two_tabs_and_spreads_its_keys(tmp_path: Path) -> None:
    """REDIS_CLUSTER_NODES=3: three embedded Valkey primaries formed into a cluster, RQ on a Valkey of
    its own; two tabs see a reply live, the keys of twenty threads land on every primary, and the
    cluster comes back on its ports with its data after a restart."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token('alice')}"}
    log = tmp_path / "launch.log"
    proc = launch(tmp_path / "data", port, log, secret=SECRET, REDIS_CLUSTER_NODES="3")
    try:
        wait_healthy(base, proc, timeout=120, path="/readyz")
        a, b = await open_tab(base, client_id="a"), await open_tab(base, client_id="b")
        tid = await new_thread(a)
        for tab in (a, b):
            await tab.subscribe("m", "messages.list", watch_args(tid))
        sent = await a.mutate("messages.send", {"threadId": tid, "prompt": "hello", "agentName": "assistant"})
        assert sent["ok"], sent
        finals = [reply_of((await tab.wait_result("m", lambda v: reply_of(v, 1, ("success",)) is not None,
                                                  timeout=60))["value"], 1) for tab in (a, b)]
        assert finals[0] == finals[1] and finals[0]["text"]
        await a.close()
        await b.close()
        for i in range(20):
            httpx.post(f"{base}/api/threads", json={"title": f"t{i}"}, headers=headers).raise_for_status()
        nodes = msgspec.json.decode((tmp_path / "data" / "valkey-cluster" / "ports.json").read_bytes())[:3]
        for node_port in nodes:
            with redis.Redis(port=node_port) as node:
                assert node.dbsize() > 0, f"nothing on the primary on port {node_port}"
    finally:
        assert interrupt(proc) == 0
    assert "cluster done" in log.read_text() and "Traceback" not in log.read_text()
    proc = launch(tmp_path / "data", port, log, secret=SECRET, REDIS_CLUSTER_NODES="3")
    try:
        wait_healthy(base, proc, timeout=120)
        assert httpx.get(f"{base}/api/threads/{tid}", headers=headers).json()["threadId"] == tid
        assert len(httpx.get(f"{base}/api/threads?numItems=50", headers=headers).json()["page"]) == 21
    finally:
        interrupt(proc)
