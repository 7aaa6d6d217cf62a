"""Keep a set of processes running: restart a dead one with backoff, stop all on a signal.

Each process runs in its own process group, so a dead process's children (an
RQ worker pool's workers) go with it before it is started again. Output is
prefixed with the process name, as honcho does.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO

log = logging.getLogger("supervisor")

BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
STABLE_S = 30.0  # a run this long resets the backoff
STOP_TIMEOUT_S = 10.0


@dataclass
class Program:
    name: str
    argv: Sequence[str]
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    failures: int = 0  # consecutive short runs
    restart_at: float | None = None
    pumps: list[threading.Thread] = field(default_factory=list)
    once: bool = False  # a step that ends (forming the local cluster): done when it exits 0
    after: str | None = None  # starts only once the ``once`` program of that name is done


class Supervisor:
    """Runs programs in the foreground until SIGINT/SIGTERM; restarts any that exits."""

    def __init__(self, out: IO[str] | None = None) -> None:
        self.programs: list[Program] = []
        self._out = out or sys.stdout
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._width = 6

    def add(self, name: str, argv: Sequence[str], env: dict[str, str], *, once: bool = False,
            after: str | None = None) -> None:
        """Supervise ``argv``. ``once``: a step that runs until it succeeds (restarted only when it
        fails); ``after``: start only when that step has succeeded."""
        self.programs.append(Program(name, list(argv), env, once=once, after=after))
        self._width = max(self._width, len(name))

    def say(self, name: str, line: str) -> None:
        with self._lock:
            self._out.write(f"{time.strftime('%H:%M:%S')} {name:<{self._width}} | {line}\n")
            self._out.flush()

    def _start(self, p: Program) -> None:
        p.proc = subprocess.Popen(p.argv, env=p.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        p.started_at, p.restart_at = time.monotonic(), None
        self.say("system", f"{p.name} started (pid {p.proc.pid})")
        pump = threading.Thread(target=self._pump, args=(p, p.proc), daemon=True)
        pump.start()
        p.pumps.append(pump)

    def _pump(self, p: Program, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            self.say(p.name, raw.decode("utf-8", "replace").rstrip("\n"))

    @staticmethod
    def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _finished(self, p: Program) -> None:
        """A ``once`` step succeeded: what waits for it starts."""
        p.proc = None
        self.say("system", f"{p.name} done")
        for waiting in self.programs:
            if waiting.after == p.name and waiting.proc is None and waiting.restart_at is None:
                self._start(waiting)

    def _reap(self, p: Program, now: float) -> None:
        assert p.proc is not None
        code = p.proc.returncode
        self._signal_group(p.proc, signal.SIGKILL)  # what it left behind goes with it
        ran = now - p.started_at
        p.failures = 0 if ran >= STABLE_S else p.failures + 1
        delay = BACKOFF_S[min(max(p.failures - 1, 0), len(BACKOFF_S) - 1)]
        p.restart_at = now + delay
        p.restarts += 1
        self.say("system", f"{p.name} exited with code {code} after {ran:.1f}s; restarting in {delay:.1f}s "
                           f"(restart #{p.restarts})")
        p.proc = None

    def run(self) -> int:
        """Start everything and supervise until asked to stop; returns the exit code."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for p in self.programs:
                if p.after is None:
                    self._start(p)
            while not self._stopping.is_set():
                now = time.monotonic()
                for p in self.programs:
                    if p.proc is not None and p.proc.poll() is not None:
                        if p.once and p.proc.returncode == 0:
                            self._finished(p)
                        else:
                            self._reap(p, now)
                    elif p.proc is None and p.restart_at is not None and now >= p.restart_at:
                        self._start(p)
                self._stopping.wait(0.2)
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0

    def _on_signal(self, signum: int, frame: object) -> None:
        self.say("system", f"{signal.Signals(signum).name} received; stopping every process")
        self._stopping.set()

    def _stop_all(self) -> None:
        """SIGTERM to everything but the store, wait, then the store: it goes last, so the
        others finish their writes instead of failing on a store that is gone."""
        running = [p for p in self.programs if p.proc is not None and p.proc.poll() is None]
        store = [p for p in running if p.name.startswith("redis")]  # the embedded Valkey (or a cluster's nodes)
        for wave in ([p for p in running if p not in store], store):
            for p in wave:
                assert p.proc is not None
                self._signal_group(p.proc, signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT_S
            for p in wave:
                assert p.proc is not None
                try:
                    p.proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    self.say("system", f"{p.name} did not stop in {STOP_TIMEOUT_S:.0f}s; killing it")
                self._signal_group(p.proc, signal.SIGKILL)
                p.proc.wait()
        for p in self.programs:
            for pump in p.pumps:
                pump.join(timeout=1)
