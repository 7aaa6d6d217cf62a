"""The time every record and script argument carries: milliseconds since the epoch, UTC."""

from __future__ import annotations

import time


def now_ms() -> int:
    """Now, in whole milliseconds since the epoch."""
    return int(time.time() * 1000)
