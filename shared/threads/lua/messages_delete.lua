#!lua
-- Delete messages by id, or by score range when ARGV[3] == 'range'. Returns {count, version, fileFollowUps}.
-- KEYS: thread, msgs, idx, idx_notool, vector_ops (each deleted id is queued to lose its vector),
--   then the file keys (shared.files.refs: its files lose a reference), idx_open, meta, idx_hidden,
--   hidden_flags, turns (a range holds the messages of every branch in it: branches.lua)
-- ARGV: channel caller 'ids' id...   |   channel caller 'range' min maxExclusive
-- caller: the thread's owner ('' trusted code)
-- include: ../../indexing/lua/index_op.lua
-- include: ../../files/lua/refs.lua
-- include: access.lua
local denied = refused(KEYS[1], ARGV[2], 'owner')
if denied then return redis.error_reply(denied) end
local ids
if ARGV[3] == 'range' then
  ids = redis.call('ZRANGEBYSCORE', KEYS[3], ARGV[4], '(' .. ARGV[5])
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[10], ARGV[4], '(' .. ARGV[5])) do ids[#ids + 1] = id end
else
  ids = {}
  for i = 4, #ARGV do ids[#ids + 1] = ARGV[i] end
end
local fk = {KEYS[6], KEYS[1], KEYS[7]}
local count = 0
local gone = {}
for _, id in ipairs(ids) do
  if redis.call('HDEL', KEYS[2], id) == 1 then
    count = count + 1
    gone[#gone + 1] = id
    queue_op(KEYS[5], 'forget_message', id)
    files_set(fk, id, '')
  end
  redis.call('ZREM', KEYS[3], id)
  redis.call('ZREM', KEYS[4], id)
  redis.call('ZREM', KEYS[8], id)
  redis.call('HDEL', KEYS[9], id)
  redis.call('ZREM', KEYS[10], id)
  redis.call('HDEL', KEYS[11], id)
end
local v = tonumber(redis.call('HGET', KEYS[1], 'version'))
if count > 0 then
  v = redis.call('HINCRBY', KEYS[1], 'version', 1)
  redis.call('SPUBLISH', ARGV[1], v)
end
return {count, v, FOLLOWS}
