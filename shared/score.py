"""Where a message sits in its thread: one sort score for (order, stepOrder).

``score = order * STEP_SPAN + stepOrder``. Newest first is a reverse range, a
page cursor is the score of the page's last message, a range deletion is a
score range. The Lua scripts compute it with ``lua/score.lua``, which a test holds to
the same span.
"""

from __future__ import annotations

STEP_SPAN = 1 << 20  # stepOrders of one order: 0 .. STEP_SPAN - 1



def score(order: int, step_order: int = 0) -> int:
    return order * STEP_SPAN + step_order


def after_order(order: int) -> str:
    """A newest-first cursor that starts just after every message of ``order``."""
    return str(score(order + 1))


def order_of(value: int) -> tuple[int, int]:
    """(order, stepOrder) of a score."""
    return divmod(value, STEP_SPAN)
