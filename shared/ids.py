"""Identifiers: time-sortable, URL-safe, and a message id names its thread."""

from __future__ import annotations

import hashlib
import os
import re

from threadline.shared.clock import now_ms
from threadline.shared.errors import BadRequest

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def _b32(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def _token(random_bytes: int, random_chars: int) -> str:
    ms = now_ms()
    rnd = int.from_bytes(os.urandom(random_bytes), "big")
    return _b32(ms, 9) + _b32(rnd, random_chars)


def new_thread_id() -> str:
    """A new thread id, e.g. ``t01hq...`` (20 characters)."""
    return "t" + _token(7, 10)


def thread_id_for(digest: str) -> str:
    """The id of the thread a guarded create makes (shared.storage.guard): the same for every resend
    of the request, so its record is found in the thread's slot; shaped like ``new_thread_id``."""
    value = int.from_bytes(hashlib.sha256(b"thread:" + digest.encode()).digest()[:12], "big")
    return "t" + _b32(value, 19)


# what a thread id a client chooses (useChat's chat ids) may be: no '-', which starts a child's tag
THREAD_ID_RULE = "8-64 letters, digits or underscores"
_CHOSEN_ID = re.compile(r"[A-Za-z0-9_]{8,64}")


def valid_chosen_id(value: str) -> bool:
    """Whether a client may give a new thread the id ``value``."""
    return _CHOSEN_ID.fullmatch(value) is not None


def valid_thread_id(value: str) -> bool:
    """Whether ``value`` may name a thread: one of ours (``t...``), or one a client chose."""
    return (value.startswith("t") and len(value) > 1) or valid_chosen_id(value)


# A thread's messages, streams and snippets carry their thread's id:
# ``<threadId>-<tag><suffix>``, so each of them names the Cluster slot of its thread.
MESSAGE, STREAM, SNIPPET = "m", "s", "n"
_NAMES = {MESSAGE: "messageId", STREAM: "streamId", SNIPPET: "snippetId"}


def new_child_id(thread_id: str, tag: str) -> str:
    """A new id of a message, stream or snippet (``tag``) of ``thread_id``."""
    return f"{thread_id}-{tag}{_token(5, 8)}"


def thread_of(child_id: str, tag: str) -> str:
    """The thread id inside a message, stream or snippet id; BadRequest when it is not one."""
    thread_id, sep, rest = child_id.partition("-" + tag)
    if not sep or not valid_thread_id(thread_id) or not rest:
        raise BadRequest(f"invalid {_NAMES[tag]} {child_id!r}")
    return thread_id


def new_message_id(thread_id: str) -> str:
    return new_child_id(thread_id, MESSAGE)


def thread_of_message(message_id: str) -> str:
    return thread_of(message_id, MESSAGE)


def new_session_id() -> str:
    return "s" + _token(7, 10)


def new_file_id() -> str:
    """A new uploaded file's id, e.g. ``f01hq...`` (23 characters; unguessable: 70 random bits)."""
    return "f" + _token(9, 13)


def new_run_id() -> str:
    """A new workflow run id, e.g. ``w01hq...`` (20 characters)."""
    return "w" + _token(7, 10)


def run_id_for(digest: str) -> str:
    """The id of the run a start with an idempotency key makes: the same for every start with that
    key (of that user), so a second start finds the run; shaped like ``new_run_id``."""
    value = int.from_bytes(hashlib.sha256(b"run:" + digest.encode()).digest()[:12], "big")
    return "w" + _b32(value, 19)
