"""What a stream is, as stored and as heard: its record, its listing, its delta notice.

Separate from the store so the Lua prelude (shared.storage.scripts) and the web
process's delta log can use them without the store.
"""

from __future__ import annotations

from typing import Literal

import msgspec

StreamStatus = Literal["streaming", "finished", "aborted"]


class StreamInfo(msgspec.Struct, rename="camel", kw_only=True):
    """A stream as ``messages.list`` with ``streams:true`` shows it."""

    stream_id: str
    order: int
    step_order: int
    status: StreamStatus
    agent_name: str | None
    text: str
    seq: int
    message_id: str = ""


class StreamRecord(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=False):
    """A stream's stored record (its hash), as the reaper and the SSE endpoint read it."""

    stream_id: str
    status: StreamStatus
    seq: int = 0
    order: int = 0
    step_order: int = 0
    agent_name: str = ""
    user_id: str = ""
    message_id: str = ""
    prompt_message_id: str = ""
    worker: str = ""
    job_id: str = ""  # the generation job that writes it ("" for replies made outside a job)
    started_at: int = 0
    heartbeat: int = 0
    ended_at: int = 0


class DeltaNotice(msgspec.Struct, array_like=True, frozen=True):
    """What every process watching a thread hears with each delta: msgpack ``[streamId, seq, parts]``.

    ``parts`` is the delta's parts as JSON text, as stored in the stream's log. The
    stream_delta script publishes it through ``delta_notice`` of ``lua/delta_notice.lua``.
    """

    stream_id: str
    seq: int
    parts: str


decode_notice = msgspec.msgpack.Decoder(DeltaNotice).decode
encode_notice = msgspec.msgpack.Encoder().encode
