"""Cursor pagination shared by threads, messages and snippets."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

import msgspec

from shared.errors import BadRequest

T = TypeVar("T")

MAX_PAGE = 100


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
    if not cursor.isdigit():
        raise BadRequest(f"invalid cursor {cursor!r}")
    return f"({cursor}"
