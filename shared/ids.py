"""Identifiers: time-sortable, URL-safe, and a message id names its thread."""

from __future__ import annotations

import os
import time

from shared.errors import BadRequest

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def _b32(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def _token(random_bytes: int, random_chars: int) -> str:
    ms = int(time.time() * 1000)
    rnd = int.from_bytes(os.urandom(random_bytes), "big")
    return _b32(ms, 9) + _b32(rnd, random_chars)


def new_thread_id() -> str:
    """A new thread id, e.g. ``t01hq...`` (20 characters)."""
    return "t" + _token(7, 10)


def new_message_id(thread_id: str) -> str:
    """A new message id of ``thread_id``: ``<threadId>-<suffix>``."""
    return f"{thread_id}-m{_token(5, 8)}"


def new_session_id() -> str:
    return "s" + _token(7, 10)


def thread_of_message(message_id: str) -> str:
    """The thread id inside a message id; BadRequest when it is not one."""
    thread_id, sep, rest = message_id.partition("-m")
    if not sep or not thread_id.startswith("t") or not rest:
        raise BadRequest(f"invalid messageId {message_id!r}")
    return thread_id
