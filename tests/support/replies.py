"""Waiting for a reply over the HTTP API, as a script or another service does."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from threadline.shared import keys
from threadline.shared.storage.client import SyncClient


def replied(base: str, thread_id: str, headers: dict[str, str], log: Path, timeout: float = 90) -> list[dict[str, Any]]:
    """The thread's messages (oldest first) once an assistant message has ended with text; on
    timeout, the end of ``log`` (the server's) says why."""
    deadline = time.monotonic() + timeout
    while True:
        page: list[dict[str, Any]] = httpx.get(f"{base}/api/threads/{thread_id}/messages",
                                               headers=headers).json()["page"]
        if any(m["role"] == "assistant" and m["status"] != "pending" and m["text"] for m in page):
            return sorted(page, key=lambda m: (m["order"], m["stepOrder"]))
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)


def partition_total(conn: SyncClient, name: str, size: str) -> int:
    """The size (``size``: the command, zcard or llen) of an app-wide set over every partition."""
    with conn.pipeline(transaction=False) as pipe:
        for key in keys.every_partition(name):
            pipe.execute_command(size.upper(), key)
        return sum(pipe.execute())


def streams_in_flight(conn: SyncClient) -> int:
    """How many streams the store lists as in flight, over every partition."""
    return partition_total(conn, keys.ACTIVE_STREAMS, "zcard")
