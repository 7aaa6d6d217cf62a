#!lua
-- Replace the stored body of existing messages (status, text, parts...), keeping order.
-- KEYS: thread, msgs, idx, idx_notool, vector_ops, then the file keys (shared.files.refs), idx_open, meta,
--   idx_hidden, hidden_flags, turns (branches.lua: a message off the active path stays off it)
-- ARGV: channel, then per message: messageId flags index files body (flags: Message.index_flags; the
--   body ends '"metadata":null}': the message keeps its metadata, metadata.lua)
-- Returns {version, fileFollowUps}.
-- include: ../../indexing/lua/index_op.lua
-- include: ../../files/lua/refs.lua
-- include: metadata.lua
-- include: ../../lua/score.lua
-- include: branches.lua
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('NOTFOUND thread') end
local fk = {KEYS[6], KEYS[1], KEYS[7]}
local ix = {idx = KEYS[3], notool = KEYS[4], open = KEYS[8], hidden = KEYS[10], flags = KEYS[11], turns = KEYS[12]}
for i = 2, #ARGV, 5 do
  if redis.call('HEXISTS', KEYS[2], ARGV[i]) == 0 then
    return redis.error_reply('NOTFOUND message ' .. ARGV[i])
  end
end
for i = 2, #ARGV, 5 do
  local id = ARGV[i]
  redis.call('HSET', KEYS[2], id, with_metadata(KEYS[9], id, ARGV[i + 4]))
  if ARGV[i + 2] == '1' then queue_op(KEYS[5], 'embed_message', id) end
  reindex(ix, id, ARGV[i + 1])
  files_set(fk, id, ARGV[i + 3])
end
local v = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('SPUBLISH', ARGV[1], v)
return {v, FOLLOWS}
