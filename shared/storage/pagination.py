"""Cursor pagination shared by threads, messages and snippets."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

import msgspec

from threadline.shared.errors import BadRequest

T = TypeVar("T")

MAX_PAGE = 100
MAX_ORDER = (1 << 31) - 1  # orders, stepOrders and seqs stay far inside a double's exact integers
MAX_CURSOR = 1 << 53
Order = Annotated[int, msgspec.Meta(ge=0, le=MAX_ORDER)]


def parse_digits(text: str, name: str, maximum: int = MAX_ORDER) -> int:
    """A whole number written in ASCII digits, at most ``maximum``; BadRequest otherwise."""
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(maximum)) or int(text) > maximum:
        raise BadRequest(f"`{name}` must be a whole number from 0 to {maximum}")
    return int(text)


class PaginationOpts(msgspec.Struct, rename="camel", kw_only=True):
    num_items: Annotated[int, msgspec.Meta(ge=1, le=MAX_PAGE)] = 20
    cursor: str | None = None


class Page(msgspec.Struct, Generic[T], rename="camel", kw_only=True):
    page: list[T]
    continue_cursor: str
    is_done: bool


def score_bound(cursor: str | None) -> str:
    """The exclusive upper score bound a cursor stands for ('+inf' for the first page)."""
    if cursor is None or cursor == "":
        return "+inf"
    return f"({parse_digits(cursor, 'cursor', MAX_CURSOR)}"
