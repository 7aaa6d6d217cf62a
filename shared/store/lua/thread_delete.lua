-- KEYS: thread, <other thread keys...>, user_threads, user_state, vector_ops
-- ARGV: threadId userId threadChannel userChannel
local n = #KEYS
if redis.call('HGET', KEYS[1], 'userId') ~= ARGV[2] then return redis.error_reply('NOTFOUND thread') end
local v = tonumber(redis.call('HGET', KEYS[1], 'version')) + 1
for i = 1, n - 3 do redis.call('UNLINK', KEYS[i]) end
redis.call('ZREM', KEYS[n - 2], ARGV[1])
local uv = redis.call('HINCRBY', KEYS[n - 1], 'version', 1)
redis.call('RPUSH', KEYS[n], index_op('forget_thread', ARGV[1]))
redis.call('PUBLISH', ARGV[3], v)
redis.call('PUBLISH', ARGV[4], uv)
return {v, uv}
