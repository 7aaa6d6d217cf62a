#!lua
-- KEYS: thread, outbox   ARGV: threadChannel now caller field value [field value ...]  ->  {version, followUps}
-- caller: the owner ('' trusted code). The owner's and each member's list hear of it by a
-- follow-up (user_threads_follow.lua), in their slots.
-- include: access.lua
local denied = refused(KEYS[1], ARGV[3], 'owner')
if denied then return redis.error_reply(denied) end
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('HSET', KEYS[1], 'updatedAt', ARGV[2])
local v = redis.call('HINCRBY', KEYS[1], 'version', 1)
local follows = list_touches(KEYS[1], v)
for _, f in ipairs(follows) do redis.call('ZADD', KEYS[2], ARGV[2], f) end
redis.call('SPUBLISH', ARGV[1], v)
return {v, follows}
