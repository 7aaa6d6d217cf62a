"""Real processes for tests: Valkey, uvicorn web servers, RQ workers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from threadline.shared.storage import embedded

ROOT = Path(__file__).resolve().parents[2]


def wait_for_port(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


def stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Stop a process (and its process group when it leads one)."""
    try:
        group = os.getpgid(proc.pid) == proc.pid
    except ProcessLookupError:
        group = False
    if proc.poll() is None or group:
        _signal(proc, signal.SIGTERM, group)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        _signal(proc, signal.SIGKILL, group)
        proc.wait()


def _signal(proc: subprocess.Popen[bytes], sig: int, group: bool) -> None:
    try:
        if group:
            os.killpg(proc.pid, sig)
        elif proc.poll() is None:
            proc.send_signal(sig)
    except ProcessLookupError:
        pass


def start_valkey(data_dir: Path, *, persist: bool = False, port: int | None = None) -> tuple[subprocess.Popen[bytes], int]:
    port = port or embedded.free_port()
    proc = subprocess.Popen(embedded.command(port, data_dir, persist=persist))
    wait_for_port(port, proc)
    return proc, port


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    env["PYTHONPATH"] = str(ROOT)
    return env


def start_web(redis_url: str, *, auth_secret: str, extra_env: dict[str, str] | None = None,
              log: Path | None = None) -> tuple[subprocess.Popen[bytes], int]:
    port = embedded.free_port()
    env = child_env(REDIS_URL=redis_url, AUTH_SECRET=auth_secret, PORT=str(port), **(extra_env or {}))
    if log is None:
        proc = subprocess.Popen([sys.executable, "-m", "threadline.server", "web"], env=env, cwd=ROOT)
    else:
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "threadline.server", "web"], env=env, cwd=ROOT,
                stdout=out, stderr=subprocess.STDOUT,
            )
    wait_for_port(port, proc)
    return proc, port
