-- KEYS: thread, <other thread keys...>, the file keys (shared.files.refs: 4), user_threads, user_state, vector_ops
-- ARGV: threadId userId threadChannel userChannel
-- The thread's file index is among its keys (listed first in the file keys): each message's files lose a reference.
-- include: ../../indexing/lua/index_op.lua
-- include: ../../files/lua/refs.lua
local n = #KEYS
if redis.call('HGET', KEYS[1], 'userId') ~= ARGV[2] then return redis.error_reply('NOTFOUND thread') end
local fk = {KEYS[n - 6], KEYS[n - 5], KEYS[n - 4], KEYS[n - 3]}
local listed = redis.call('HKEYS', fk[1])
for _, mid in ipairs(listed) do files_set(fk, mid, '') end
local v = tonumber(redis.call('HGET', KEYS[1], 'version')) + 1
for i = 1, n - 6 do redis.call('UNLINK', KEYS[i]) end
redis.call('ZREM', KEYS[n - 2], ARGV[1])
local uv = redis.call('HINCRBY', KEYS[n - 1], 'version', 1)
redis.call('RPUSH', KEYS[n], index_op('forget_thread', ARGV[1]))
redis.call('SPUBLISH', ARGV[3], v)
redis.call('SPUBLISH', ARGV[4], uv)
return {v, uv}
