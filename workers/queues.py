"""Queue names and the synchronous Redis connection RQ uses."""

from __future__ import annotations

import time

import redis

from threadline.shared.jobs import GENERATION, INDEX, QUEUES

__all__ = ["GENERATION", "INDEX", "QUEUES", "wait_for_redis"]


def wait_for_redis(url: str, timeout_s: float = 60.0) -> redis.Redis:
    """A connected client, once the server answers PING (start-up ordering)."""
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + timeout_s
    delay = 0.05
    while True:
        try:
            client.ping()
            return client
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
