"""Redis connections and the conversion of Redis errors at the boundary."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import redis.asyncio as aioredis
import redis.exceptions as rexc

from shared.errors import ChatError, Conflict, Internal, NotFound, Unavailable


def connect(url: str, *, max_connections: int = 64, wait_s: float = 10.0) -> aioredis.Redis:
    """An asyncio Redis client (bytes in and out) for ``url``.

    The pool is bounded and blocking: past ``max_connections`` a command waits
    (up to ``wait_s``) for a free connection instead of failing at once.
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=wait_s,
        socket_keepalive=True,
        health_check_interval=30,
        socket_connect_timeout=5,
    )
    return aioredis.Redis.from_pool(pool)


@contextlib.contextmanager
def redis_errors() -> Iterator[None]:
    """Turn Redis errors into ChatErrors: script replies NOTFOUND/CONFLICT keep their meaning."""
    try:
        yield
    except ChatError:
        raise
    except rexc.ResponseError as exc:
        text = str(exc)
        if text.startswith("NOTFOUND"):
            raise NotFound(text.removeprefix("NOTFOUND ")) from exc
        if text.startswith("CONFLICT"):
            raise Conflict(text.removeprefix("CONFLICT ")) from exc
        raise Internal(f"storage error: {text}") from exc
    except (rexc.ConnectionError, rexc.TimeoutError, OSError) as exc:
        raise Unavailable(f"storage unreachable: {exc}") from exc
    except rexc.RedisError as exc:
        raise Internal(f"storage error: {exc}") from exc
