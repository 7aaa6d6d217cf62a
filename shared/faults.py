"""Crash points for fault tests of real processes (as failpoints in databases): with
``THREADLINE_CRASH_AT=<name>`` in its environment, a process that reaches the point ``<name>``
exits at once, without cleanup, as a SIGKILL would stop it there. Unset, a point costs one
comparison."""

from __future__ import annotations

import os

_AT = os.environ.get("THREADLINE_CRASH_AT", "")
EXIT_STATUS = 137  # as killed by SIGKILL


def crash_point(name: str) -> None:
    """Exit now if the fault test asked to crash at ``name``."""
    if _AT and _AT == name:
        os._exit(EXIT_STATUS)
