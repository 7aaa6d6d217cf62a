"""Requests to a web process that dies between the two steps of its write (THREADLINE_CRASH_AT,
shared.faults): the fault tests of writes split over two slots."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support import procs
from tests.support.stack import SECRET
from threadline.shared.auth import mint
from threadline.shared.faults import EXIT_STATUS

ALICE = {"Authorization": f"Bearer {mint(SECRET, 'alice')}"}


def crashed(url: str, tmp: Path, method: str, path: str, *, at: str = "follow:threads.user",
            env: dict[str, str] | None = None, **kwargs: object) -> None:
    """Send one request to a web process that dies at the crash point ``at``; it must die there."""
    proc, port = procs.start_web(url, auth_secret=SECRET, extra_env={"THREADLINE_CRASH_AT": at, **(env or {})},
                                 log=tmp / "crashing-web.log")
    try:
        with pytest.raises(httpx.TransportError):
            httpx.request(method, f"http://127.0.0.1:{port}{path}", timeout=30, **kwargs)  # type: ignore[arg-type]
        assert proc.wait(timeout=30) == EXIT_STATUS
    finally:
        procs.stop(proc)
