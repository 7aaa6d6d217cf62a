"""scripts/run's launcher: embedded Valkey, web and workers; data survive a restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from shared.embedded_redis import free_port
from tests.conftest import TEST_SECRET, token_for
from tests.support.procs import ROOT, child_env


def launch(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = child_env(DATA_DIR=str(data_dir), PORT=str(port), AUTH_SECRET=TEST_SECRET)
    env.pop("REDIS_URL", None)
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "server.launch"], env=env, cwd=ROOT,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )


def wait_healthy(base: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "launcher exited early"
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError("web never became healthy")


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
    proc = launch(tmp_path / "data", port, log)
    try:
        wait_healthy(base, proc)
        assert httpx.get(f"{base}/api/threads/{tid}", headers=headers).json()["title"] == "kept"
        page = httpx.get(f"{base}/api/threads/{tid}/messages", headers=headers).json()["page"]
        assert [m["text"] for m in page] == ["remember me"]
    finally:
        interrupt(proc)
