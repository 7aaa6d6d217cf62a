"""Garbage-collector settings for processes holding thousands of connections or replies.

CPython's default thresholds run collections so often that the full ones, which
walk every tracked object (each connection holds hundreds), stall fan-out for
tens of milliseconds. We freeze what start-up made (never garbage) and raise the
thresholds so that young collections are rarer and full ones rarer still.
"""

from __future__ import annotations

import gc


def tune(thresholds: str) -> None:
    """Freeze start-up objects and set the collection thresholds ("gen0,gen1,gen2")."""
    a, b, c = (int(x) for x in thresholds.split(","))
    gc.collect()
    gc.freeze()
    gc.set_threshold(a, b, c)
