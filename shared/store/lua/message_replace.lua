-- Replace the stored body of existing messages (status, text, parts...), keeping order.
-- KEYS: thread, msgs, idx, idx_notool, vector_ops   ARGV: channel, then per message: messageId isTool index body
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('NOTFOUND thread') end
for i = 2, #ARGV, 4 do
  if redis.call('HEXISTS', KEYS[2], ARGV[i]) == 0 then
    return redis.error_reply('NOTFOUND message ' .. ARGV[i])
  end
end
for i = 2, #ARGV, 4 do
  local id = ARGV[i]
  redis.call('HSET', KEYS[2], id, ARGV[i + 3])
  if ARGV[i + 2] == '1' then redis.call('RPUSH', KEYS[5], index_op('embed_message', id)) end
  if ARGV[i + 1] == '1' then
    redis.call('ZREM', KEYS[4], id)
  else
    redis.call('ZADD', KEYS[4], redis.call('ZSCORE', KEYS[3], id), id)
  end
end
local v = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('PUBLISH', ARGV[1], v)
return v
