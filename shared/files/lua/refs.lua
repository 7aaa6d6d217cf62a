-- The file references of messages, on the thread's side (included by the scripts that write messages,
-- not run alone). A thread's file index (thread_files: messageId -> file ids) changes in the same
-- step as its messages; each reference a message gains or loses becomes a follow-up in the thread's
-- outbox (shared.storage.outbox), done in the file's slot by file_ref.lua. Each carries a version
-- that grows with every change of the thread's references, so follow-ups of one message done in
-- any order leave the file with the last one.
-- fk: {thread_files, thread, outbox} (thread_files and outbox: shared.files.refs.FileRefs.keys)

local FOLLOWS = {}  -- the follow-ups this script recorded, returned to the writer to do at once

-- message `mid` now references `files` (space-separated ids)
local function files_set(fk, mid, files)
  local old = redis.call('HGET', fk[1], mid) or ''
  if old == files then return end
  local t = redis.call('TIME')
  local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local v = math.max(now_us, tonumber(redis.call('HGET', fk[2], 'fileSeq') or '0') + 1)
  local vs = string.format('%d', v)
  redis.call('HSET', fk[2], 'fileSeq', vs)
  local tid = redis.call('HGET', fk[2], 'threadId')
  local was, now = {}, {}
  for id in string.gmatch(old, '%S+') do was[id] = true end
  for id in string.gmatch(files, '%S+') do now[id] = true end
  local function follow(id, on)
    local entry = cmsgpack.pack({'files.ref', id, tid, mid, vs, on})
    redis.call('ZADD', fk[3], math.floor(now_us / 1000), entry)
    FOLLOWS[#FOLLOWS + 1] = entry
  end
  for id in pairs(was) do if not now[id] then follow(id, 0) end end
  for id in pairs(now) do if not was[id] then follow(id, 1) end end
  if files == '' then redis.call('HDEL', fk[1], mid) else redis.call('HSET', fk[1], mid, files) end
end
