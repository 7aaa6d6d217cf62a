"""A nesting limit for JSON from clients, checked before any decoder recurses into it."""

from __future__ import annotations

import json
import re

from threadline.shared.errors import BadRequest

MAX_DEPTH = 64
_STR_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')  # a whole string literal, or a bracket
_BYTES_TOKENS = re.compile(_STR_TOKENS.pattern.encode())


def check_depth(text: str | bytes, limit: int = MAX_DEPTH) -> None:
    """BadRequest when arrays/objects in ``text`` nest deeper than ``limit``."""
    opening = ("[", "{") if isinstance(text, str) else (b"[", b"{")
    if text.count(opening[0]) + text.count(opening[1]) <= limit:  # type: ignore[arg-type]
        return  # it cannot nest deeper than it has brackets
    tokens = _STR_TOKENS.finditer(text) if isinstance(text, str) else _BYTES_TOKENS.finditer(text)
    depth = 0
    for token in tokens:
        first = token.group()[:1]
        if first in opening:
            depth += 1
            if depth > limit:
                raise BadRequest(f"JSON nested deeper than {limit} levels")
        elif first in ("]", "}", b"]", b"}"):
            depth -= 1


def top_level_strings(text: str, names: tuple[str, ...]) -> dict[str, str]:
    """The string members ``names`` of a top-level JSON object, read without decoding the rest.

    For answering a frame that cannot be decoded (too deep, bad escapes elsewhere) by its id.
    """
    found: dict[str, str] = {}
    depth = 0
    key: str | None = None
    for token in _STR_TOKENS.finditer(text):
        first = token.group()[:1]
        if first in "[{":
            depth += 1
            key = None
        elif first in "]}":
            depth -= 1
        elif depth == 1:
            literal = token.group()
            rest = text[token.end():token.end() + 64].lstrip()
            if key is not None and key in names and key not in found:
                try:
                    value = json.loads(literal)
                except ValueError:
                    value = None
                if isinstance(value, str):
                    found[key] = value
                key = None
            elif rest.startswith(":"):
                key = literal[1:-1]
    return found
