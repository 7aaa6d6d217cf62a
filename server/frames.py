"""Every frame the server sends: one Struct and one builder per frame type.

WebSocket frames (PROTOCOL.md) and the Server-Sent Events of a stream's
deltas are built here and nowhere else. A value shared by many subscribers
(a query result, a delta's parts) is JSON encoded once and embedded as raw
JSON in each subscriber's frame.
"""

from __future__ import annotations

from typing import Any

import msgspec

from threadline.shared.errors import ChatError


class _Frame(msgspec.Struct, tag_field="type", rename="camel", kw_only=True):
    pass


class _Optional(_Frame, omit_defaults=True):
    """A frame whose absent members are left out (not sent as null)."""


class Connected(_Frame, tag="connected"):
    user_id: str
    session_id: str
    server_time: int


class Pong(_Frame, tag="pong"):
    t: Any = None


class Error(_Optional, tag="error", kw_only=True):
    id: str | None = None  # the subscription or request it answers, if any
    code: str
    message: str
    retry_after_ms: int | None = None


class Result(_Frame, tag="result"):
    id: str
    version: int
    value: msgspec.Raw


class Patch(_Frame, tag="patch"):
    id: str
    version: int
    base_version: int
    ops: msgspec.Raw


class Delta(_Frame, tag="delta"):
    id: str
    stream_id: str
    seq: int
    parts: msgspec.Raw


class Mutated(_Optional, tag="mutated", kw_only=True):
    id: str
    ok: bool
    value: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET
    version: int | msgspec.UnsetType = msgspec.UNSET
    error: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET


class _SseDelta(msgspec.Struct):
    seq: int
    parts: msgspec.Raw


class _SseEnd(msgspec.Struct):
    status: str
    seq: int


_encode = msgspec.json.Encoder().encode


def _text(frame: msgspec.Struct) -> str:
    return _encode(frame).decode()


def _string(value: str) -> str:
    return _encode(value).decode()


def connected(user_id: str, session_id: str, server_time: int) -> str:
    return _text(Connected(user_id=user_id, session_id=session_id, server_time=server_time))


def pong(t: Any) -> str:
    return _text(Pong(t=t))


def error(exc: ChatError, sub_id: str | None = None) -> str:
    return _text(Error(id=sub_id, code=exc.code, message=exc.message, retry_after_ms=exc.retry_after_ms))


# The three frames of fan-out are sent once per subscriber: they splice the shared JSON
# into the frame text as it is, which costs half of encoding a Result or Delta and
# decoding it to text again (the frames are the same: tests/server/test_frames.py).


def result(sub_id: str, version: int, value: str) -> str:
    """``value`` is the query's result, already JSON (encoded once for every subscriber)."""
    return f'{{"type":"result","id":{_string(sub_id)},"version":{version:d},"value":{value}}}'


def patch(sub_id: str, version: int, base_version: int, ops: str) -> str:
    """``ops`` turn the result of ``base_version`` into that of ``version`` (shared.patches)."""
    return (f'{{"type":"patch","id":{_string(sub_id)},"version":{version:d},'
            f'"baseVersion":{base_version:d},"ops":{ops}}}')


def delta(sub_id: str, stream_id: str, seq: int, parts: str) -> str:
    """``parts`` is the delta's parts, already JSON (as the stream's log holds them)."""
    return (f'{{"type":"delta","id":{_string(sub_id)},"streamId":{_string(stream_id)},'
            f'"seq":{seq:d},"parts":{parts}}}')


def mutated(request_id: str, *, value: bytes, version: int) -> str:
    return _text(Mutated(id=request_id, ok=True, value=msgspec.Raw(value), version=version))


def mutated_error(request_id: str, error: ChatError | dict[str, Any]) -> str:
    body = error.to_dict() if isinstance(error, ChatError) else error
    return _text(Mutated(id=request_id, ok=False, error=body))


def sse_delta(seq: int, parts: str | bytes) -> bytes:
    return b"id: %d\nevent: delta\ndata: %s\n\n" % (seq, _encode(_SseDelta(seq, msgspec.Raw(parts))))


def sse_end(status: str, seq: int) -> bytes:
    return b"event: end\ndata: %s\n\n" % _encode(_SseEnd(status, seq))
