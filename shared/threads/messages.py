"""Messages: one encoded record each in a per-thread hash, indexed by (order, stepOrder).

The index is scored by (order, stepOrder): see shared.score.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from threadline.shared import keys
from threadline.shared.clock import now_ms
from threadline.shared.errors import BadRequest, NotFound
from threadline.shared.files.refs import FileRefs, refs_arg
from threadline.shared.ids import new_message_id, thread_of_message
from threadline.shared.indexing.ops import index_flag
from threadline.shared.records import (
    NO_METADATA,
    ORDER_PLACEHOLDER,
    Fork,
    Message,
    Status,
    Version,
    encoded_metadata,
    message_decoder,
    stored_body,
)
from threadline.shared.score import score
from threadline.shared.storage.client import Client, redis_errors, text, texts
from threadline.shared.storage.guard import Guard, in_thread
from threadline.shared.storage.pagination import Page, score_bound
from threadline.shared.storage.scripts import Arg, Scripts, lua
from threadline.shared.streams.records import StreamInfo
from threadline.shared.streams.store import parse_streams, streams_read_call
from threadline.shared.threads.threads import Access, ThreadStore, access_fields, check_fields

BRANCH_SWITCH = lua(__file__, "branch_switch")
BRANCHES_READ = lua(__file__, "branches_read")
MESSAGE_METADATA = lua(__file__, "message_metadata")
MESSAGE_REPLACE = lua(__file__, "message_replace")
MESSAGES_DELETE = lua(__file__, "messages_delete")
MESSAGES_PAGE = lua(__file__, "messages_page")
MESSAGES_PAGE_STREAMS = lua(__file__, "messages_page_streams")
MESSAGES_SAVE = lua(__file__, "messages_save")

MAX_BATCH = 500


def _encode_unordered(message: Message) -> bytes:
    body = stored_body(message)
    if ORDER_PLACEHOLDER not in body or not body.endswith(NO_METADATA):
        raise AssertionError("Message must encode order and stepOrder as -1 first, metadata last")
    return body


class MessageStore:
    """Save, read, list and delete messages; every write notifies the thread's subscribers."""

    def __init__(self, redis: Client, scripts: Scripts, threads: ThreadStore, refs: FileRefs) -> None:
        self._redis = redis
        self._scripts = scripts
        self._threads = threads
        self._refs = refs

    @staticmethod
    def _thread_keys(thread_id: str) -> list[str]:
        return [
            keys.thread(thread_id),
            keys.messages(thread_id),
            keys.message_index(thread_id),
            keys.message_index_no_tools(thread_id),
            keys.vector_ops(thread_id),
            *FileRefs.keys(thread_id),
            keys.message_index_open(thread_id),
            keys.message_metadata(thread_id),
            *keys.branch_keys(thread_id),
        ]

    async def save(
        self,
        thread_id: str,
        user_id: str | None,
        messages: Sequence[Message],
        *,
        prompt_message_id: str | None = None,
        order: int | None = None,
        edits: str | None = None,
        guard: Guard | None = None,
    ) -> tuple[int, list[Message]]:
        """Save ``messages`` atomically; return (thread version, the saved messages).

        A user message opens the thread's next order at stepOrder 0; any other takes
        the next stepOrder of the current order (the prompt's when ``prompt_message_id``
        is given). With ``order``, every message takes the next stepOrder of that order.
        With ``user_id`` (who writes them: each message's userId) they must be the thread's owner
        or a writer of it (NotFound, Forbidden: checked in the save's own step); None skips the
        check (trusted server-side code) and keeps each message's userId (the thread owner's when
        it has none). With a ``guard`` the batch is saved once: a resend gets the first save's ids
        and orders. ``edits``: the id of a user message of the active branch that the first message
        (a user message) is a new version of: it opens a turn beside that one's, which with all
        after it leaves the active branch (Conflict when it is not on it: shared/threads/lua/branches.lua).
        """
        if not messages:
            raise BadRequest("no messages to save")
        if len(messages) > MAX_BATCH:
            raise BadRequest(f"at most {MAX_BATCH} messages in one batch")
        if order is not None and order < 0:
            raise BadRequest("order must be >= 0")
        if edits is not None and (messages[0].role != "user" or order is not None or prompt_message_id):
            raise BadRequest("a new version of a message is a user message of a turn of its own")
        owner = ""
        if user_id is None and not all(m.user_id for m in messages):
            owner = (await self._threads.get(thread_id)).user_id
        created = now_ms()
        args: list[Arg] = [keys.thread_channel(thread_id), prompt_message_id or "", len(messages), user_id or "",
                           edits or ""]
        prepared: list[Message] = []
        for message in messages:
            m = copy.copy(message)
            m.message_id = m.message_id or new_message_id(thread_id)
            if thread_of_message(m.message_id) != thread_id:
                raise BadRequest(f"messageId {m.message_id} is not of thread {thread_id}")
            m.thread_id, m.user_id = thread_id, user_id or m.user_id or owner
            m.created_at = m.created_at or created
            m.order, m.step_order = -1, -1
            kind = "explicit" if order is not None else ("user" if m.role == "user" else "step")
            args += [kind, order if order is not None else "", m.message_id,
                     m.index_flags, index_flag(m), refs_arg(m), _encode_unordered(m),
                     encoded_metadata(m.metadata)]
            prepared.append(m)
        async with self._refs.pinned(thread_id, prepared):
            with redis_errors():
                out = await self._scripts.run(MESSAGES_SAVE, self._thread_keys(thread_id), args,
                                              in_thread(guard, thread_id))
        await self._refs.follow(thread_id, out[-1])
        version = int(out[0])
        for i, m in enumerate(prepared):
            m.message_id = text(out[1 + 3 * i])
            m.order, m.step_order = int(out[2 + 3 * i]), int(out[3 + 3 * i])
        return version, prepared

    async def switch_branch(self, thread_id: str, user_id: str | None, order: int,
                            guard: Guard | None = None) -> tuple[int, int]:
        """Put turn ``order`` on the active branch, down to the newest turn under it (a writer's
        doing: the thread shows it to every member). Returns (thread version, the branch's last order)."""
        with redis_errors():
            version, leaf = await self._scripts.run(
                BRANCH_SWITCH, self._thread_keys(thread_id), [keys.thread_channel(thread_id), user_id or "", order],
                in_thread(guard, thread_id))
        return int(version), int(leaf)

    async def shown(self, message: Message) -> bool:
        """Whether ``message`` is on its thread's active branch (an edit leaves the old version's off it)."""
        with redis_errors():
            return await self._redis.zscore(keys.message_index(message.thread_id), message.message_id) is not None

    async def branches(self, thread_id: str, user_id: str | None) -> tuple[int, list[Fork]]:
        """(thread version, the forks on the active branch, oldest first): where an edited message
        has versions, each version's turn and first message and which one is shown."""
        if user_id is not None:
            await self._threads.check(thread_id, user_id)
        with redis_errors():
            version, raw = await self._scripts.run(BRANCHES_READ, [
                keys.thread(thread_id), keys.message_index(thread_id), keys.message_index_hidden(thread_id),
                keys.turns(thread_id)], [])
        return int(version), [
            Fork(parent_order=int(parent), versions=[Version(order=int(o), message_id=text(mid), active=shown == 1)
                                                     for o, mid, shown in kids])
            for parent, kids in raw]

    async def off_branch(self, thread_id: str) -> AsyncIterator[list[Message]]:
        """The messages off the active branch (earlier versions and their replies), a page at a time."""
        start = 0
        while True:
            with redis_errors():
                ids = await self._redis.zrange(keys.message_index_hidden(thread_id), start, start + MAX_BATCH - 1)
                bodies = await self._redis.hmget(keys.messages(thread_id), texts(ids)) if ids else []
            if not ids:
                return
            yield [message_decoder.decode(b) for b in bodies if b is not None]
            start += len(ids)

    async def in_orders(self, thread_id: str, start_order: int, end_order: int) -> list[Message]:
        """Messages with start_order <= order <= end_order, oldest first."""
        with redis_errors():
            ids = await self._redis.zrangebyscore(keys.message_index(thread_id), score(start_order),
                                                  f"({score(end_order + 1)}")
            bodies = await self._redis.hmget(keys.messages(thread_id), texts(ids)) if ids else []
        return [message_decoder.decode(b) for b in bodies if b is not None]

    async def replace(self, thread_id: str, messages: Iterable[Message]) -> int:
        """Store new contents of existing messages (status, text, parts); return the version. Each
        keeps the metadata stored for it (``set_metadata`` changes that)."""
        messages = list(messages)
        args: list[Arg] = [keys.thread_channel(thread_id)]
        for m in messages:
            args += [m.message_id, m.index_flags, index_flag(m), refs_arg(m), stored_body(m)]
        async with self._refs.pinned(thread_id, messages):
            with redis_errors():
                version, follows = await self._scripts.run(MESSAGE_REPLACE, self._thread_keys(thread_id), args)
        await self._refs.follow(thread_id, follows)
        return int(version)

    async def set_metadata(self, message_id: str, metadata: dict[str, Any] | None, user_id: str | None = None,
                           guard: Guard | None = None) -> tuple[int, Message]:
        """Replace a message's metadata (None clears it); with ``user_id``, only by a writer of its
        thread (checked in the same step). Returns (thread version, the message as stored now)."""
        thread_id = thread_of_message(message_id)
        args: list[Arg] = [keys.thread_channel(thread_id), message_id, encoded_metadata(metadata), user_id or ""]
        with redis_errors():
            version = await self._scripts.run(
                MESSAGE_METADATA, [keys.thread(thread_id), keys.messages(thread_id), keys.message_metadata(thread_id)],
                args, in_thread(guard, thread_id))
        return int(version), await self.get(message_id)

    async def many(self, message_ids: Sequence[str]) -> list[Message]:
        """The messages that exist among ``message_ids`` (any threads), read in one round trip."""
        by_thread: defaultdict[str, list[str]] = defaultdict(list)
        for mid in message_ids:
            by_thread[thread_of_message(mid)].append(mid)
        if not by_thread:
            return []
        with redis_errors():
            async with self._redis.pipeline(transaction=False) as pipe:
                for thread_id, ids in by_thread.items():
                    pipe.hmget(keys.messages(thread_id), ids)
                replies = await pipe.execute()
        return [message_decoder.decode(b) for bodies in replies for b in bodies if b is not None]

    async def get(self, message_id: str, user_id: str | None = None, need: Access = "reader") -> Message:
        """One message; NotFound when missing or, with ``user_id``, of a thread not theirs to see;
        Forbidden when their role in it is below ``need``."""
        thread_id = thread_of_message(message_id)
        with redis_errors():
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hmget(keys.thread(thread_id), access_fields(user_id))
                pipe.hget(keys.messages(thread_id), message_id)
                access, body = await pipe.execute()
        if body is None:
            raise NotFound(f"message {message_id} not found")
        try:
            check_fields(access, thread_id, user_id, need)
        except NotFound:
            raise NotFound(f"message {message_id} not found") from None
        return message_decoder.decode(body)

    async def list(
        self,
        thread_id: str,
        user_id: str | None,
        *,
        num_items: int = 20,
        cursor: str | None = None,
        exclude_tool_messages: bool = False,
        statuses: Sequence[Status] | None = None,
        streams: list[StreamInfo] | None = None,
        min_order: int | None = None,
    ) -> tuple[int, Page[Message]]:
        """(thread version, a page of messages newest first), from one consistent read.
        ``min_order``: none older than that order (a filtered read then stops there, not at the
        thread's first message). A filter of pending or failed messages only reads the index of the
        messages not successful, so it costs what they are, not what the thread is.

        With a ``streams`` list, the thread's streams are read in the same atomic
        step as the first page and put into it, so a stream and its final message
        are never both missing.
        """
        assert streams is None or min_order is None, "a page with the streams is a page of the whole thread"
        wanted = set(statuses) if statuses else None
        unsettled = wanted is not None and "success" not in wanted  # only pending or failed: their own index
        if unsettled:
            index = keys.message_index_open(thread_id)
        else:
            index = (keys.message_index_no_tools if exclude_tool_messages else keys.message_index)(thread_id)
        bound = score_bound(cursor)
        found: list[Message] = []
        version = 0
        last_score = cursor or ""
        while True:
            limit = num_items + 1 - len(found) if wanted is None else max(num_items * 2, 50)
            page_keys = [keys.thread(thread_id), keys.messages(thread_id), index]
            with redis_errors():
                if streams is not None and not version:
                    stream_keys, stream_args = streams_read_call(thread_id)
                    (owner, raw_version, hits, bodies), rows = await self._scripts.run(
                        MESSAGES_PAGE_STREAMS, page_keys + stream_keys, [bound, limit, *stream_args])
                    streams.extend(parse_streams(rows))
                else:
                    owner, raw_version, hits, bodies = await self._scripts.run(
                        MESSAGES_PAGE, page_keys, [bound, limit, "-inf" if min_order is None else score(min_order)])
            if not version and user_id is not None and owner.decode() != user_id:  # a member's, or no one's
                await self._threads.check(thread_id, user_id)
            version = version or int(raw_version)
            exhausted = len(hits) // 2 < limit
            for i, body in enumerate(bodies):
                if body is None:
                    continue
                m = message_decoder.decode(body)
                if (wanted is not None and m.status not in wanted) or (unsettled and exclude_tool_messages and m.is_tool):
                    last_score = hits[2 * i + 1].decode()
                    continue
                if len(found) == num_items:
                    return version, Page(page=found, continue_cursor=last_score, is_done=False)
                found.append(m)
                last_score = hits[2 * i + 1].decode()
            if exhausted:
                return version, Page(page=found, continue_cursor=last_score, is_done=True)
            bound = f"({last_score}"

    async def delete(self, message_ids: Sequence[str], user_id: str | None,
                     guard: Guard | None = None) -> tuple[int, dict[str, int]]:
        """Delete messages by id; return (count deleted, {threadId: new version})."""
        by_thread: dict[str, list[str]] = defaultdict(list)
        for mid in message_ids:
            by_thread[thread_of_message(mid)].append(mid)
        for thread_id in by_thread:  # (each again in its script: none is half done for a refusal)
            await self._threads.check(thread_id, user_id, "owner")
        total, versions = 0, {}
        for thread_id, ids in by_thread.items():
            with redis_errors():
                count, version, follows = await self._scripts.run(
                    MESSAGES_DELETE, self._thread_keys(thread_id), [keys.thread_channel(thread_id), user_id or "", "ids", *ids],
                    in_thread(guard, thread_id))
            await self._refs.follow(thread_id, follows)
            total += int(count)
            versions[thread_id] = int(version)
        return total, versions

    async def delete_range(
        self,
        thread_id: str,
        user_id: str | None,
        *,
        start_order: int,
        end_order: int,
        start_step_order: int = 0,
        end_step_order: int = 0,
        guard: Guard | None = None,
    ) -> tuple[int, int]:
        """Delete (startOrder, startStepOrder) inclusive to (endOrder, endStepOrder) exclusive."""
        low, high = score(start_order, start_step_order), score(end_order, end_step_order)
        if min(start_order, end_order, start_step_order, end_step_order) < 0 or high < low:
            raise BadRequest("range must be non-negative with end after start")
        with redis_errors():
            count, version, follows = await self._scripts.run(
                MESSAGES_DELETE, self._thread_keys(thread_id),
                [keys.thread_channel(thread_id), user_id or "", "range", low, high],
                in_thread(guard, thread_id))
        await self._refs.follow(thread_id, follows)
        return int(count), int(version)


