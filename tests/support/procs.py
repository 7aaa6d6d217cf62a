"""Real processes for tests: Valkey, uvicorn web servers, RQ workers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from threadline.shared.storage import embedded

ROOT = Path(__file__).resolve().parents[2]


def wait_for_port(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 20.0) -> None:
    """Return once something listens on ``port``; with ``proc``, once ``proc`` (or a process it
    started) does. Suites run side by side choose free ports at once: another may take ours between
    the choice and the bind, and then ours fails and exits (RuntimeError here) while theirs answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise PortTaken(f"process exited with {proc.returncode} before listening on {port}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0 and (proc is None or _listens(proc.pid, port)):
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


class PortTaken(RuntimeError):
    """The process exited before it listened (on a port someone else took, or for a reason in its log)."""


def start_listening(spawn: Callable[[int], subprocess.Popen[bytes]], attempts: int = 3,
                    timeout: float = 20.0) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``spawn(port)`` on a free port and wait until it listens there; on another free port
    when it exits first (a port taken between the choice and the bind)."""
    for attempt in range(attempts):
        port = embedded.free_port()
        proc = spawn(port)
        try:
            wait_for_port(port, proc, timeout)
            return proc, port
        except PortTaken:
            if attempt == attempts - 1:
                raise
        except BaseException:
            stop(proc)
            raise
    raise AssertionError("unreachable")


def _listens(pid: int, port: int) -> bool:
    """Whether ``pid`` or one of its descendants holds the listening socket of ``port`` (Linux's
    /proc; where /proc tells nothing, the connection that was accepted is taken as the answer)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # LISTEN
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return True
    for member in _family(pid):
        try:
            fds = os.listdir(f"/proc/{member}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{member}/fd/{fd}") in inodes:
                    return True
            except OSError:
                continue
    return False


def _family(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    family = {pid}
    grew = True
    while grew:
        grew = False
        for child, parent in parents.items():
            if parent in family and child not in family:
                family.add(child)
                grew = True
    return family


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
    if port is not None:  # a port of the caller's (a restart on it): no other to try
        proc = subprocess.Popen(embedded.command(port, data_dir, persist=persist))
        wait_for_port(port, proc)
        return proc, port
    return start_listening(lambda free: subprocess.Popen(embedded.command(free, data_dir, persist=persist)))


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    env["PYTHONPATH"] = str(ROOT)
    return env


def start_web(redis_url: str, *, auth_secret: str, extra_env: dict[str, str] | None = None,
              log: Path | None = None) -> tuple[subprocess.Popen[bytes], int]:
    def spawn(port: int) -> subprocess.Popen[bytes]:
        env = child_env(REDIS_URL=redis_url, AUTH_SECRET=auth_secret, PORT=str(port), **(extra_env or {}))
        argv = [sys.executable, "-m", "threadline.server", "web"]
        if log is None:
            return subprocess.Popen(argv, env=env, cwd=ROOT)
        with open(log, "ab") as out:
            return subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    return start_listening(spawn, timeout=60)  # (its imports alone took over 20 s on a loaded machine)
