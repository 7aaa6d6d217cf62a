#!lua
-- KEYS: thread, <other thread keys...>, the file keys (shared.files.refs: 2), vector_ops, outbox
-- ARGV: threadId userId threadChannel now  ->  {version, followUps, fileFollowUps}
-- The thread's file index is among its keys (listed first in the file keys): each message's files lose a reference.
-- The owner's and each member's lists drop it by follow-ups (user_threads_follow.lua), in their slots.
-- include: access.lua
-- include: ../../indexing/lua/index_op.lua
-- include: ../../files/lua/refs.lua
local n = #KEYS
if redis.call('HGET', KEYS[1], 'userId') ~= ARGV[2] then return redis.error_reply('NOTFOUND thread') end
local fk = {KEYS[n - 3], KEYS[1], KEYS[n - 2]}
local listed = redis.call('HKEYS', fk[1])
for _, mid in ipairs(listed) do files_set(fk, mid, '') end
local v = tonumber(redis.call('HGET', KEYS[1], 'version')) + 1
local follows = {cmsgpack.pack({'threads.user', 'remove', ARGV[2], ARGV[1], redis.call('HGET', KEYS[1], 'createdAt')})}
for _, m in ipairs(thread_members(KEYS[1])) do
  follows[#follows + 1] = cmsgpack.pack({'threads.user', 'remove', m[1], ARGV[1], m[2]})
end
for i = 1, n - 4 do redis.call('UNLINK', KEYS[i]) end
queue_op(KEYS[n - 1], 'forget_thread', ARGV[1])
for _, f in ipairs(follows) do redis.call('ZADD', KEYS[n], ARGV[4], f) end
redis.call('SPUBLISH', ARGV[3], v)
return {v, follows, FOLLOWS}
