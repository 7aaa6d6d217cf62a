"""The webhook events of replies: ``reply.finished`` and ``reply.failed``, recorded by the stream's end
(shared/streams/lua/stream_finish.lua) as a follow-up in the thread's outbox, in the same atomic step as
the reply's final state; the follow-up (done at once by the writer, else by the outbox sweeper) reads
the reply and records its deliveries (``Webhooks.emit``, once per endpoint however often it runs)."""

from __future__ import annotations

from typing import Any

from threadline.shared import keys
from threadline.shared.records import message_decoder
from threadline.shared.storage import outbox
from threadline.shared.storage.client import Client, redis_errors, text
from threadline.shared.storage.scripts import Scripts
from threadline.shared.webhooks.store import Webhooks

MAX_TEXT = 32 << 10  # characters of the reply's text an event carries


def reply_event(stream_status: str, statuses: list[str]) -> str:
    """The event a stream's end tells of."""
    return "reply.failed" if stream_status == "aborted" or "failed" in statuses else "reply.finished"


@outbox.handler("webhook.reply")
async def _reply(redis: Client, scripts: Scripts, args: list[Any]) -> None:
    event_type, member, at = str(args[0]), str(args[1]), int(args[2])
    thread_id, _, stream_id = member.partition("/")
    with redis_errors():
        stream = {text(k): text(v) for k, v in (await redis.hgetall(keys.stream(thread_id, stream_id))).items()}
        owner = await redis.hget(keys.thread(thread_id), "userId")
        body = await redis.hget(keys.messages(thread_id), stream["messageId"]) if stream.get("messageId") else None
    data: dict[str, Any] = {"threadId": thread_id, "streamId": stream_id, "threadOwner": text(owner) if owner else None,
                            "userId": stream.get("userId") or None, "agentName": stream.get("agentName") or None,
                            "promptMessageId": stream.get("promptMessageId") or None,
                            "messageId": stream.get("messageId") or None}
    if body is not None:
        message = message_decoder.decode(body)
        data |= {"status": message.status, "error": message.error, "text": message.text[:MAX_TEXT],
                 "textTruncated": len(message.text) > MAX_TEXT}
    await Webhooks(redis, scripts).emit(event_type, f"evt_{stream_id}", data, at)
