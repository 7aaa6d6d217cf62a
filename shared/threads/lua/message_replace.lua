#!lua
-- Replace the stored body of existing messages (status, text, parts...), keeping order.
-- KEYS: thread, msgs, idx, idx_notool, vector_ops, then the file keys (shared.files.refs), idx_open, meta
-- ARGV: channel, then per message: messageId flags index files body (flags: Message.index_flags; the
--   body ends '"metadata":null}': the message keeps its metadata, metadata.lua)
-- Returns {version, fileFollowUps}.
-- include: ../../indexing/lua/index_op.lua
-- include: ../../files/lua/refs.lua
-- include: metadata.lua
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('NOTFOUND thread') end
local fk = {KEYS[6], KEYS[1], KEYS[7]}
for i = 2, #ARGV, 5 do
  if redis.call('HEXISTS', KEYS[2], ARGV[i]) == 0 then
    return redis.error_reply('NOTFOUND message ' .. ARGV[i])
  end
end
for i = 2, #ARGV, 5 do
  local id = ARGV[i]
  redis.call('HSET', KEYS[2], id, with_metadata(KEYS[9], id, ARGV[i + 4]))
  if ARGV[i + 2] == '1' then queue_op(KEYS[5], 'embed_message', id) end
  local score = redis.call('ZSCORE', KEYS[3], id)
  if string.sub(ARGV[i + 1], 1, 1) == '1' then redis.call('ZREM', KEYS[4], id) else redis.call('ZADD', KEYS[4], score, id) end
  if string.sub(ARGV[i + 1], 2, 2) == '1' then redis.call('ZADD', KEYS[8], score, id) else redis.call('ZREM', KEYS[8], id) end
  files_set(fk, id, ARGV[i + 3])
end
local v = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('SPUBLISH', ARGV[1], v)
return {v, FOLLOWS}
