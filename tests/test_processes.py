"""The test support's process start: a port someone else takes between its choice and the bind is
never taken for ours."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from tests.support import procs


def test_a_stranger_on_the_port_is_not_the_process_waited_for() -> None:
    with socket.socket() as stranger:
        stranger.bind(("127.0.0.1", 0))
        stranger.listen()
        port = stranger.getsockname()[1]
        # ours would fail to bind it and exit: until then the stranger answers on the port
        ours = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1)"])
        with pytest.raises(procs.PortTaken):
            procs.wait_for_port(port, ours, timeout=10)
        procs.wait_for_port(port, timeout=1)  # without a process, anyone listening is enough


def test_a_process_that_could_not_bind_is_started_again_on_another_port() -> None:
    with socket.socket() as stranger:
        stranger.bind(("127.0.0.1", 0))
        stranger.listen()
        taken = stranger.getsockname()[1]
        tried: list[int] = []

        def spawn(port: int) -> subprocess.Popen[bytes]:
            tried.append(port)
            port = taken if len(tried) == 1 else port  # the first choice was taken meanwhile
            code = (f"import socket, time; s = socket.socket(); s.bind(('127.0.0.1', {port})); s.listen(); "
                    "time.sleep(30)")
            return subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.DEVNULL)

        proc, port = procs.start_listening(spawn)
        try:
            assert len(tried) == 2 and port == tried[1] != taken
            assert procs._listens(proc.pid, port) and not procs._listens(proc.pid, taken)
        finally:
            procs.stop(proc)
