"""Threads: one Redis hash each, indexed per user by creation sequence.

A thread is its owner's (``userId``); the owner lets others in as members (fields
``member:<userId>`` of the same hash, shared/threads/lua/access.lua): a writer sends and is
answered, a reader watches. Each write script checks the caller's role in its own atomic step;
a member's own thread list holds the threads they are in, kept by follow-ups.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import msgspec

from threadline.shared import keys
from threadline.shared.clock import now_ms
from threadline.shared.errors import BadRequest, Forbidden, NotFound
from threadline.shared.files.refs import FileRefs
from threadline.shared.ids import THREAD_ID_RULE, new_thread_id, thread_id_for, valid_chosen_id
from threadline.shared.records import (
    Member,
    MemberRole,
    Takeover,
    Thread,
    ThreadStatus,
    encoded_metadata,
    thread_metadata_decoder,
)
from threadline.shared.storage import partitions
from threadline.shared.storage.client import Client, redis_errors, text, texts
from threadline.shared.storage.guard import Guard, in_thread
from threadline.shared.storage.outbox import Outbox, handler
from threadline.shared.storage.pagination import Page, score_bound
from threadline.shared.storage.scripts import Scripts, lua

THREAD_CREATE = lua(__file__, "thread_create")
THREAD_DELETE = lua(__file__, "thread_delete")
THREAD_MEMBERS = lua(__file__, "thread_members")
THREAD_UPDATE = lua(__file__, "thread_update")
USER_THREADS_FOLLOW = lua(__file__, "user_threads_follow")
MAX_MEMBERS = 100
GONE_TTL_S = 86400  # a deleted thread's follow-ups are dropped this long (the sweeper is done in seconds)

Strings = list[str]  # (annotations inside ThreadStore would see its method `list`)
Access = Literal["reader", "writer", "owner"]  # what a caller needs of a thread, least first
_RANK: dict[str, int] = {"reader": 1, "writer": 2, "owner": 3}
_MEMBER = b"member:"

_json = msgspec.json.Encoder()
_takeover_decoder = msgspec.json.Decoder(Takeover)



def _members(raw: Mapping[Any, Any]) -> list[Member]:
    out = []
    for field, value in raw.items():
        if field.startswith(_MEMBER):
            role, joined = text(value).split(" ")
            out.append(Member(user_id=field[len(_MEMBER):].decode(), role=role, joined_at=int(joined)))  # type: ignore[arg-type]
    return sorted(out, key=lambda m: m.joined_at)


def role_in(raw: Mapping[Any, Any], user_id: str) -> Access | None:
    """``user_id``'s role in the thread stored as ``raw`` (its hash): None when not theirs to see."""
    if not raw:
        return None
    if raw.get(b"userId") == user_id.encode():
        return "owner"
    member = raw.get(_MEMBER + user_id.encode())
    return text(member).split(" ")[0] if member else None  # type: ignore[return-value]


def check_access(raw: Mapping[Any, Any], thread_id: str, user_id: str | None, need: Access) -> None:
    """NotFound when the thread is missing or not ``user_id``'s to see; Forbidden when their role
    is below ``need``. None: trusted code, any thread."""
    if not raw:
        raise NotFound(f"thread {thread_id} not found")
    if user_id is None:
        return
    role = role_in(raw, user_id)
    if role is None:
        raise NotFound(f"thread {thread_id} not found")
    if _RANK[role] < _RANK[need]:
        raise Forbidden(f"this needs a {need} of thread {thread_id}")


def access_fields(user_id: str | None) -> list[bytes]:
    """The fields of a thread's hash that check_access needs for ``user_id`` (HMGET them)."""
    return [b"userId", _MEMBER + (user_id or "").encode()]


def check_fields(values: Sequence[Any], thread_id: str, user_id: str | None, need: Access) -> None:
    """check_access on the values of access_fields, read together."""
    owner, role = values
    member = access_fields(user_id)[1]
    check_access({b"userId": owner, **({member: role} if role else {})} if owner else {}, thread_id, user_id, need)


def _thread_from_hash(raw: Mapping[Any, Any]) -> Thread:
    def get(name: str) -> str:
        return text(raw.get(name.encode(), b""))

    return Thread(
        thread_id=get("threadId"),
        user_id=get("userId"),
        title=get("title"),
        summary=get("summary"),
        status=get("status") or "active",  # type: ignore[arg-type]
        metadata=thread_metadata_decoder.decode(raw.get(b"metadata") or b"{}"),
        created_at=int(get("createdAt") or 0),
        updated_at=int(get("updatedAt") or 0),
        takeover=_takeover_decoder.decode(raw[b"takeover"]) if raw.get(b"takeover") else None,
        members=_members(raw),
    )


class ThreadStore:
    """Create, read, update, delete and list threads; every write notifies subscribers."""

    def __init__(self, redis: Client, scripts: Scripts, outbox: Outbox, refs: FileRefs) -> None:
        self._redis = redis
        self._scripts = scripts
        self._outbox = outbox
        self._refs = refs

    async def create(
        self,
        user_id: str,
        *,
        title: str = "",
        summary: str = "",
        metadata: dict[str, Any] | None = None,
        guard: Guard | None = None,
        thread_id: str | None = None,
    ) -> Thread:
        """Create a thread owned by ``user_id`` (once per ``guard``: a resend gets the same thread).
        ``thread_id``: the id a client chose (shared.ids.valid_chosen_id); Conflict when it is taken.

        The thread is written first, with a follow-up that lists it in its owner's list (another
        slot: shared.storage.outbox), done before this returns."""
        if thread_id is not None and not valid_chosen_id(thread_id):
            raise BadRequest(f"a thread id is {THREAD_ID_RULE}")
        if thread_id is None:  # a resend of a guarded create names the same thread, hence the same record
            thread_id = thread_id_for(guard.digest) if guard is not None else new_thread_id()
        thread = Thread(
            thread_id=thread_id,
            user_id=user_id,
            title=title,
            summary=summary,
            metadata=metadata or {},
            created_at=now_ms(),
        )
        home = keys.outbox(thread_id)
        with redis_errors():
            made_id, created_at, follow = await self._scripts.run(
                THREAD_CREATE,
                keys=[keys.thread(thread_id), home],
                args=[thread_id, user_id, title, summary, thread.status, _json.encode(thread.metadata),
                      thread.created_at],
                record=guard.thread(thread_id, "create") if guard is not None else None,
            )
        await self._outbox.follow_now(home, follow)
        thread.thread_id = text(made_id)
        thread.created_at = thread.updated_at = int(created_at)  # a resend (same guard) gets the first one's
        return thread

    async def get(self, thread_id: str, user_id: str | None = None, need: Access = "reader") -> Thread:
        """The thread; NotFound when missing or, with ``user_id``, neither theirs nor one they are a
        member of; Forbidden when their role is below ``need`` (check_access)."""
        return (await self.get_versioned(thread_id, user_id, need))[1]

    async def get_versioned(self, thread_id: str, user_id: str | None = None,
                            need: Access = "reader") -> tuple[int, Thread]:
        """(the thread's version, the thread), read together."""
        with redis_errors():
            raw = await self._redis.hgetall(keys.thread(thread_id))
        check_access(raw, thread_id, user_id, need)
        return int(raw.get(b"version", b"0")), _thread_from_hash(raw)

    async def check(self, thread_id: str, user_id: str | None, need: Access = "reader") -> None:
        """check_access for ``user_id`` in the thread, reading only what it needs."""
        with redis_errors():
            values = await self._redis.hmget(keys.thread(thread_id), access_fields(user_id))
        check_fields(values, thread_id, user_id, need)

    async def version(self, thread_id: str) -> int:
        """The thread's change counter (0 when it does not exist)."""
        with redis_errors():
            raw = await self._redis.hget(keys.thread(thread_id), "version")
        return int(raw or 0)

    async def update(
        self,
        thread_id: str,
        user_id: str,
        *,
        title: str | None = None,
        summary: str | None = None,
        status: ThreadStatus | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Change the given fields of the user's thread (its owner's: Forbidden for a member)."""
        fields: list[Any] = []
        for name, value in (("title", title), ("summary", summary), ("status", status)):
            if value is not None:
                fields += [name, value]
        if metadata is not None:
            fields += ["metadata", _json.encode(metadata)]
        home = keys.outbox(thread_id)
        with redis_errors():
            _, follows = await self._scripts.run(
                THREAD_UPDATE, [keys.thread(thread_id), home], [keys.thread_channel(thread_id), now_ms(), user_id, *fields])
        await self._outbox.follow_all(home, follows)

    async def set_takeover(self, thread_id: str, takeover: Takeover | None) -> tuple[int, Thread]:
        """A person takes the thread over from its agents (None: gives it back); (the version this
        wrote, the thread now)."""
        if takeover is not None:
            encoded_metadata(takeover.metadata)  # (its bound, as a message's)
        home = keys.outbox(thread_id)
        value = _json.encode(takeover) if takeover is not None else b""
        with redis_errors():
            version, follows = await self._scripts.run(
                THREAD_UPDATE, [keys.thread(thread_id), home], [keys.thread_channel(thread_id), now_ms(), "", "takeover", value])
        await self._outbox.follow_all(home, follows)
        return int(version), await self.get(thread_id)

    async def delete(self, thread_id: str, user_id: str, extra_keys: Sequence[str] = (),
                     guard: Guard | None = None) -> None:
        """Delete the user's thread with everything of it (messages, streams...)."""
        home = keys.outbox(thread_id)
        with redis_errors():
            _, follows, file_follows = await self._scripts.run(
                THREAD_DELETE,
                keys=[*keys.thread_keys(thread_id), *extra_keys, *FileRefs.keys(thread_id), keys.vector_ops(thread_id),
                      home],
                args=[thread_id, user_id, keys.thread_channel(thread_id), now_ms()],
                record=in_thread(guard, thread_id),
            )
        await self._outbox.follow_all(home, follows)
        await self._refs.follow(thread_id, file_follows)

    async def add_member(self, thread_id: str, caller: str | None, user_id: str, role: MemberRole) -> tuple[int, bool]:
        """Let ``user_id`` into the thread as ``role`` (or change a member's role): its owner's
        doing (``caller``; None trusted code). The thread comes into the member's own list.
        (The thread's version, whether anything changed.)"""
        return await self._members_op("add", thread_id, caller, user_id, role)

    async def remove_member(self, thread_id: str, caller: str | None, user_id: str) -> tuple[int, bool]:
        """Take ``user_id`` out of the thread (the owner's doing, or the member's own: leaving)."""
        return await self._members_op("remove", thread_id, caller, user_id, "")

    async def _members_op(self, op: str, thread_id: str, caller: str | None, user_id: str,
                          role: str) -> tuple[int, bool]:
        if not user_id or len(user_id) > 256 or " " in user_id:
            raise BadRequest("a member is a user id (1 to 256 characters, no spaces)")
        home = keys.outbox(thread_id)
        with redis_errors():
            version, changed, follows = await self._scripts.run(
                THREAD_MEMBERS, [keys.thread(thread_id), home],
                [op, caller or "", user_id, role, now_ms(), keys.thread_channel(thread_id), MAX_MEMBERS])
        await self._outbox.follow_all(home, follows)
        return int(version), bool(changed)

    async def list(
        self, user_id: str, *, num_items: int = 20, cursor: str | None = None
    ) -> tuple[int, Page[Thread]]:
        """(user list version, a page of the user's threads, newest first)."""
        with redis_errors():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hget(keys.user_state(user_id), "version")
                pipe.zrevrangebyscore(
                    keys.user_threads(user_id), score_bound(cursor), "-inf",
                    start=0, num=num_items + 1, withscores=True,
                )
                version, hits = await pipe.execute()
            more = len(hits) > num_items
            hits = hits[:num_items]
            async with self._redis.pipeline(transaction=False) as pipe:
                for member, _ in hits:
                    pipe.hgetall(keys.thread(text(member)))
                raws = await pipe.execute()
        threads = [_thread_from_hash(raw) for raw in raws if raw]
        next_cursor = str(int(hits[-1][1])) if hits else (cursor or "")
        return int(version or 0), Page(page=threads, continue_cursor=next_cursor, is_done=not more)

    async def list_version(self, user_id: str) -> int:
        with redis_errors():
            raw = await self._redis.hget(keys.user_state(user_id), "version")
        return int(raw or 0)

    async def users(self, limit: int = 200) -> Strings:
        """User ids with threads in their lists (their own or shared with them), most recent first."""
        with redis_errors():
            return [user for user, _ in await partitions.top(self._redis, keys.USERS, limit)]

    async def all_ids(self, user_id: str) -> Strings:
        """Every thread id in the user's list (their own and those shared with them)."""
        with redis_errors():
            return texts(await self._redis.zrange(keys.user_threads(user_id), 0, -1))

    async def owned_ids(self, user_id: str) -> Strings:
        """The ids of the threads the user owns."""
        ids = await self.all_ids(user_id)
        with redis_errors():
            async with self._redis.pipeline(transaction=False) as pipe:
                for thread_id in ids:
                    pipe.hget(keys.thread(thread_id), "userId")
                owners = await pipe.execute()
        return [t for t, owner in zip(ids, owners, strict=True) if owner == user_id.encode()]


@handler("threads.user")
async def _list_follow(redis: Client, scripts: Scripts, args: list[Any]) -> None:
    """A thread's create (``add``), update (``touch``) or delete (``remove``) in its owner's list."""
    op, user_id, thread_id, created = (str(a) for a in args)
    with redis_errors():
        await scripts.run(
            USER_THREADS_FOLLOW,
            [keys.user_threads(user_id), keys.user_state(user_id), keys.user_threads_listed(user_id),
             keys.users(user_id), keys.user_thread_gone(user_id, thread_id, created)],
            [op, thread_id, created, user_id, now_ms(), keys.user_channel(user_id), GONE_TTL_S])
