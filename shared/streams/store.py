"""Streams: one generation's live output.

A stream has a record (status, seq, order, heartbeat), its text so far, and a
Redis Stream of deltas whose entry ids are ``0-<seq>`` (the replay log). Each
delta is appended and published in one atomic step; the end of a stream and its
final message(s) are stored in one atomic step too. Ended streams stay listed
for a grace period, then their keys are removed in bounded batches.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import socket
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from threadline.shared import keys
from threadline.shared.clock import now_ms
from threadline.shared.errors import Internal, Unavailable
from threadline.shared.files.refs import FileRefs, file_ids
from threadline.shared.ids import STREAM, new_child_id, thread_of
from threadline.shared.indexing.ops import index_flag
from threadline.shared.records import Message, stored_body
from threadline.shared.storage import partitions
from threadline.shared.storage.client import Client, as_bytes, redis_errors, text
from threadline.shared.storage.guard import Guard, in_thread
from threadline.shared.storage.scripts import Arg, Scripts, lua
from threadline.shared.streams.records import StreamInfo, StreamRecord, StreamStatus
from threadline.shared.webhooks import Webhooks
from threadline.shared.webhooks.replies import reply_event

REPLIES_ABORT_QUEUED = lua(__file__, "replies_abort_queued")
STREAM_ABORT = lua(__file__, "stream_abort")
STREAM_DELTA = lua(__file__, "stream_delta")
STREAM_FINISH = lua(__file__, "stream_finish")
APPEND_TRIES = 5  # a delta is tried again this often (after 50, 100, 150, 200 ms) before the reply fails
STREAM_OPEN = lua(__file__, "stream_open")
STREAMS_READ = lua(__file__, "streams_read")

GRACE_MS = 60_000
QUEUED_ABORT_TTL_MS = 86_400_000  # a queued job's stop mark outlives any wait in its thread's queue
STALE_MS = 15_000


Args = list[Arg]
Strings = list[str]
StreamInfos = list[StreamInfo]


def streams_read_call(thread_id: str) -> tuple[list[str], list[Arg]]:
    """(keys, args) of the streams_read script for one thread."""
    return [keys.thread_streams(thread_id)], list(keys.stream_key_parts(thread_id))


def new_stream_id(thread_id: str) -> str:
    return new_child_id(thread_id, STREAM)


def thread_of_stream(stream_id: str) -> str:
    return thread_of(stream_id, STREAM)


def member(thread_id: str, stream_id: str) -> str:
    return f"{thread_id}/{stream_id}"



class _Appends:
    """Deltas of every stream of this process, sent to Redis together.

    A delta waits at most for the pipeline already on its way: while one
    pipeline is out, the next fills up, so a process writing hundreds of streams
    sends a few pipelines per tick instead of a round trip per delta. Each delta
    is still its own atomic script call, in the order it was asked for.
    """

    def __init__(self, scripts: Scripts) -> None:
        self._scripts = scripts
        self._pending: list[tuple[list[str], list[Arg], asyncio.Future[Any]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def call(self, keys_: list[str], args: list[Arg]) -> Any:
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((keys_, args, done))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send())
        return await done

    async def _send(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                results = await self._scripts.run_all([(STREAM_DELTA, keys_, args) for keys_, args, _ in batch])
            except BaseException as exc:  # the connection failed: every delta of the batch did
                for _, _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for (_, _, done), result in zip(batch, results, strict=True):
                if done.done():
                    continue
                if isinstance(result, Exception):
                    done.set_exception(result)
                else:
                    done.set_result(result)


class StreamStore:
    def __init__(self, redis: Client, scripts: Scripts, refs: FileRefs, webhooks: Webhooks | None = None) -> None:
        self._redis = redis
        self._scripts = scripts
        self._refs = refs
        self._webhooks = webhooks or Webhooks(redis, scripts)
        self._appends = _Appends(scripts)

    async def open(self, reply: Message, *, agent_name: str | None, prompt_message_id: str,
                   job_id: str = "") -> tuple[str, bool]:
        """Open a stream for the pending reply message: (its id, whether it was asked to stop while
        its job ``job_id`` was queued: the stream is then open as aborted, and the reply must end)."""
        tid = reply.thread_id
        sid = new_stream_id(tid)
        now = now_ms()
        with redis_errors():
            _, status = await self._scripts.run(
                STREAM_OPEN, [keys.thread(tid), keys.stream(tid, sid), keys.thread_streams(tid),
                                keys.active_streams(tid), keys.generation_aborts(tid)],
                [keys.thread_channel(tid), sid, reply.order, reply.step_order, agent_name or "",
                 reply.user_id, reply.message_id, now, member(tid, sid), prompt_message_id,
                 f"{socket.gethostname()}:{os.getpid()}", job_id],
            )
        return sid, text(status) == "aborted"

    async def append(self, thread_id: str, stream_id: str, parts_json: bytes, text: str, *,
                     closing: bool = False, after: int | None = None) -> int:
        """Append and publish one delta; its seq, or 0 when the stream was aborted (``closing``: the
        aborted generation's last delta, which is still taken). ``after``: the seq this writer last
        wrote; with it a failed call is tried again (a connection lost, a slot moving between
        primaries) without ever writing the delta twice."""
        call_args: list[Arg] = [keys.delta_channel(thread_id), stream_id, parts_json, text, "1" if closing else "0",
                                "" if after is None else after]
        tries = APPEND_TRIES if after is not None else 1
        stream_keys = keys.stream_keys(thread_id, stream_id)
        for attempt in range(tries):
            try:
                with redis_errors():  # batched with other deltas; tried again alone (it follows a moving slot)
                    seq, _ = await (self._appends.call(stream_keys, call_args) if attempt == 0 else
                                    self._scripts.run(STREAM_DELTA, stream_keys, call_args))
                return int(seq)
            except (Unavailable, Internal):
                if attempt == tries - 1:
                    raise
                await asyncio.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    async def orphan(self, thread_id: str, stream_id: str) -> None:
        """Hand the stream to the reaper now, as if its worker had died (it ends or retries it)."""
        with redis_errors():
            await self._redis.zadd(keys.active_streams(thread_id), {member(thread_id, stream_id): 0}, xx=True)

    async def finish(self, thread_id: str, stream_id: str, messages: Iterable[Message],
                     status: StreamStatus = "finished") -> bool:
        """End the stream and store the final message(s) together; False if already ended. Its
        webhook event (shared.webhooks.replies) is recorded in the same step when an endpoint takes it. A file
        a message references that is not there (or not its user's) is left out of its
        references."""
        messages = list(messages)
        event = reply_event(status, [m.status for m in messages])
        args: Args = [keys.thread_channel(thread_id), status, member(thread_id, stream_id), now_ms(),
                      event if await self._webhooks.wants(event) else ""]
        for m in messages:
            missing = await self._refs.pin(thread_id, [m])
            refs = " ".join(f for f in file_ids(m.parts) if (m.message_id, f) not in missing)
            args += [m.message_id, m.index_flags, index_flag(m), refs, stored_body(m)]
        with redis_errors():
            out = await self._scripts.run(
                STREAM_FINISH,
                [keys.thread(thread_id), keys.messages(thread_id), keys.message_index(thread_id),
                 keys.message_index_no_tools(thread_id), keys.stream(thread_id, stream_id),
                 keys.active_streams(thread_id), keys.ended_streams(thread_id), keys.vector_ops(thread_id),
                 *FileRefs.keys(thread_id), keys.message_index_open(thread_id), keys.message_metadata(thread_id),
                 *keys.branch_keys(thread_id)],
                args,
            )
        if not out:
            return False
        await self._refs.follow(thread_id, out[1])
        return True

    async def abort(self, thread_id: str, stream_id: str, guard: Guard | None = None) -> bool:
        """Ask a streaming generation to stop; True if it was streaming."""
        with redis_errors():
            return bool(await self._scripts.run(
                STREAM_ABORT, [keys.thread(thread_id), keys.stream(thread_id, stream_id)],
                [keys.thread_channel(thread_id)],
                in_thread(guard, thread_id, stream_id)))

    async def abort_replies(self, thread_id: str, job_ids: Sequence[str] | None = None,
                            guard: Guard | None = None) -> int:
        """Stop the thread's replies (only those of ``job_ids``, when given): a queued one before its
        stream opens, a streaming one now. Returns how many were stopped; each at most once.

        Queued jobs are marked first, then streams are read: a job that opens its stream in between
        finds its mark and opens it aborted, so no reply slips through."""
        with redis_errors():
            marked = {text(j) for j in await self._scripts.run(
                REPLIES_ABORT_QUEUED, [keys.generation_queue(thread_id), keys.generation_aborts(thread_id)],
                [QUEUED_ABORT_TTL_MS, *(job_ids or ())])}
        stopped = 0
        for info in await self.list(thread_id):
            if info.status != "streaming":
                continue
            record = await self.get(info.stream_id)
            if record is None or (job_ids is not None and record.job_id not in job_ids):
                continue
            marked.discard(record.job_id)  # it had started: stopping its stream is what counts
            stopped += await self.abort(thread_id, info.stream_id, guard)
        return stopped + len(marked)

    async def list(self, thread_id: str) -> StreamInfos:
        """The thread's streams (in flight and recently ended), in (order, stepOrder) order."""
        with redis_errors():
            rows = await self._scripts.run(STREAMS_READ, *streams_read_call(thread_id))
        return parse_streams(rows)

    async def active_ids(self, thread_id: str) -> Strings:
        return [s.stream_id for s in await self.list(thread_id) if s.status == "streaming"]

    async def get(self, stream_id: str) -> StreamRecord | None:
        """The stream's record; None once it is gone (or for an id that never was)."""
        tid = thread_of_stream(stream_id)
        with redis_errors():
            raw = await self._redis.hgetall(keys.stream(tid, stream_id))
        if not raw:
            return None
        try:
            return msgspec.convert({text(k): text(v) for k, v in raw.items()}, StreamRecord, strict=False)
        except msgspec.ValidationError:
            return None  # a half-written record (its keys expiring): as good as gone

    async def log(self, thread_id: str, stream_id: str, after: int = 0,
                  upto: int | None = None) -> builtins.list[tuple[int, bytes]]:
        """Deltas with seq in (after, upto], as (seq, parts json)."""
        high = f"0-{upto}" if upto is not None else "+"
        with redis_errors():
            entries = await self._redis.xrange(keys.stream_log(thread_id, stream_id), f"(0-{after}", high)
        return [(int(text(eid).split("-")[1]), as_bytes((fields or {})[b"p"])) for eid, fields in entries or ()]

    async def text(self, thread_id: str, stream_id: str) -> str:
        with redis_errors():
            raw = await self._redis.get(keys.stream_text(thread_id, stream_id))
        return text(raw or b"")

    async def all_keys(self, thread_id: str) -> Strings:
        """Every key of every stream of the thread (for deleting the thread)."""
        with redis_errors():
            ids = await self._redis.zrange(keys.thread_streams(thread_id), 0, -1)
        return [k for sid in ids for k in keys.stream_keys(thread_id, text(sid))]

    async def stale(self, older_than_ms: int = STALE_MS, limit: int = 100) -> builtins.list[tuple[str, str]]:
        """(threadId, streamId) of streams whose worker stopped heartbeating."""
        with redis_errors():
            raw = await partitions.due(self._scripts, keys.ACTIVE_STREAMS, now_ms() - older_than_ms, limit)
        return [_member_parts(m) for m in raw]

    async def forget_active(self, thread_id: str, stream_id: str) -> None:
        with redis_errors():
            await self._redis.zrem(keys.active_streams(thread_id), member(thread_id, stream_id))

    async def expire_ended(self, grace_ms: int = GRACE_MS, limit: int = 100) -> int:
        """Remove the keys of streams ended more than ``grace_ms`` ago, at most ``limit``."""
        with redis_errors():
            raw = await partitions.due(self._scripts, keys.ENDED_STREAMS, now_ms() - grace_ms, limit)
        for m in raw:
            await self.drop(*_member_parts(m))
        return len(raw)

    async def drop(self, thread_id: str, stream_id: str) -> None:
        """Remove an ended stream's keys now (its reply's text with them)."""
        with redis_errors():
            async with self._redis.pipeline(transaction=True) as pipe:  # all in the thread's slot
                pipe.zrem(keys.thread_streams(thread_id), stream_id)
                pipe.execute_command("UNLINK", *keys.stream_keys(thread_id, stream_id))  # (a cluster pipeline queues no unlink())
                pipe.zrem(keys.ended_streams(thread_id), member(thread_id, stream_id))
                await pipe.execute()


def _member_parts(m: object) -> tuple[str, str]:
    tid, _, sid = text(m).partition("/")
    return tid, sid


def parse_streams(rows: Sequence[Sequence[bytes]]) -> list[StreamInfo]:
    return [msgspec.convert({"streamId": sid, "order": order, "stepOrder": step, "status": status,
                             "agentName": agent or None, "seq": seq, "messageId": mid, "text": body},
                            StreamInfo, strict=False)
            for sid, order, step, status, agent, seq, mid, body in (map(text, row) for row in rows)]
