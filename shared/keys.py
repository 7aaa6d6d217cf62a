"""Every Redis key and pub/sub channel name. Nobody formats a key elsewhere.

A thread's keys share the hash tag ``{t:<threadId>}`` and a user's keys share
``{u:<userId>}``, so each Lua script on a thread stays within one Cluster slot
(thread create/delete also touch the owner's index: see README, "Scaling").
"""

from __future__ import annotations

PREFIX = "tl"


def _t(thread_id: str) -> str:
    return f"{PREFIX}:{{t:{thread_id}}}"


def _u(user_id: str) -> str:
    return f"{PREFIX}:{{u:{user_id}}}"


def thread(thread_id: str) -> str:
    """Hash: the thread record plus its counters (maxOrder, version)."""
    return f"{_t(thread_id)}:thread"


def messages(thread_id: str) -> str:
    """Hash: messageId -> encoded Message record."""
    return f"{_t(thread_id)}:msgs"


def message_index(thread_id: str) -> str:
    """Sorted set of messageIds scored by order * STEP_SPAN + stepOrder."""
    return f"{_t(thread_id)}:idx"


def message_index_no_tools(thread_id: str) -> str:
    """The same index without tool messages (for excludeToolMessages)."""
    return f"{_t(thread_id)}:idx:notool"


def thread_keys(thread_id: str) -> list[str]:
    """Every key that belongs to one thread (for deleting it whole)."""
    return [
        thread(thread_id),
        messages(thread_id),
        message_index(thread_id),
        message_index_no_tools(thread_id),
    ]


def thread_channel(thread_id: str) -> str:
    """Pub/sub channel of change notices for one thread's messages."""
    return f"{PREFIX}:chg:{{t:{thread_id}}}"


def user_threads(user_id: str) -> str:
    """Sorted set of a user's threadIds scored by a per-user creation sequence."""
    return f"{_u(user_id)}:threads"


def user_state(user_id: str) -> str:
    """Hash: the user's thread-list version and creation sequence."""
    return f"{_u(user_id)}:state"


def user_channel(user_id: str) -> str:
    """Pub/sub channel of change notices for one user's thread list."""
    return f"{PREFIX}:chg:{{u:{user_id}}}"


def idempotency(client_id: str, request_id: str) -> str:
    """String: the first outcome of one (clientId, request id) mutation."""
    return f"{PREFIX}:idem:{{c:{client_id}}}:{request_id}"


CHANNEL_PATTERN_PREFIX = f"{PREFIX}:chg:"
