"""Parse the prefix of a JSON document that is still streaming in."""

from __future__ import annotations

import json
from typing import Any


def parse_partial(text: str) -> Any:
    """The value that the JSON prefix ``text`` shows so far (None when nothing yet).

    Tries the longest prefix first: open strings, arrays and objects are closed;
    a dangling key, comma or unfinished literal is cut off.
    """
    text = text.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    for end in range(len(text), 0, -1):
        prefix = text[:end].rstrip().rstrip(",:").rstrip()
        if not prefix:
            return None
        stack, in_string, escaped = _scan(prefix)
        if escaped:
            continue
        closing = ('"' if in_string else "") + "".join("]" if c == "[" else "}" for c in reversed(stack))
        try:
            return json.loads(prefix + closing)
        except json.JSONDecodeError:
            continue
    return None


def _scan(text: str) -> tuple[list[str], bool, bool]:
    stack: list[str] = []
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            stack.append(ch)
        elif ch in "]}" and stack:
            stack.pop()
    return stack, in_string, escaped
