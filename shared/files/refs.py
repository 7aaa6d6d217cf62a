"""Which files a message references, kept exact in the same atomic step as the message.

Every script that saves, replaces or deletes messages (and deletes threads) calls
the Lua functions below with the thread's file index and the global counts: a
message's file ids are listed in ``thread_files`` (messageId -> ids); each file's
reference count is in ``FILE_REFS``; a file with none is in ``FILES_IDLE`` since
when, for the vacuum (shared.files.store). A save that references a file that is
not there (never uploaded, vacuumed, another user's) fails whole.
"""

from __future__ import annotations

from collections.abc import Iterable

from threadline.shared import keys
from threadline.shared.records import FilePart, ImagePart, Message, Part


def file_ids(parts: Iterable[Part]) -> list[str]:
    """The ids of the stored files ``parts`` reference, once each, in order."""
    out: list[str] = []
    for p in parts:
        if isinstance(p, FilePart | ImagePart) and p.file_id and p.file_id not in out:
            out.append(p.file_id)
    return out


def refs_arg(message: Message) -> str:
    """A message's file ids as its script argument."""
    return " ".join(file_ids(message.parts))


def file_keys(thread_id: str) -> list[str]:
    """The keys the Lua functions take (``fk``), in this order."""
    return [keys.thread_files(thread_id), keys.FILES, keys.FILE_REFS, keys.FILES_IDLE]


LUA_PRELUDE = """
local function files_missing(fk, owner, files)
  for id in string.gmatch(files, '%S+') do
    local rec = redis.call('HGET', fk[2], id)
    if not rec or cjson.decode(rec).userId ~= owner then return 'NOTFOUND file ' .. id end
  end
  return nil
end
local function files_set(fk, mid, files)
  local old = redis.call('HGET', fk[1], mid) or ''
  if old == files then return end
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  for id in string.gmatch(old, '%S+') do
    if redis.call('HINCRBY', fk[3], id, -1) <= 0 then
      redis.call('HDEL', fk[3], id)
      if redis.call('HEXISTS', fk[2], id) == 1 then redis.call('ZADD', fk[4], now, id) end
    end
  end
  for id in string.gmatch(files, '%S+') do
    redis.call('HINCRBY', fk[3], id, 1)
    redis.call('ZREM', fk[4], id)
  end
  if files == '' then redis.call('HDEL', fk[1], mid) else redis.call('HSET', fk[1], mid, files) end
end
"""
