#!lua
-- KEYS: thread, outbox   ARGV: threadChannel now field value [field value ...]  ->  {version, followUp}
-- The owner's list hears of it by the follow-up (user_threads_follow.lua), in the owner's slot.
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('NOTFOUND thread') end
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('HSET', KEYS[1], 'updatedAt', ARGV[2])
local v = redis.call('HINCRBY', KEYS[1], 'version', 1)
local follow = cmsgpack.pack({'threads.user', 'touch', redis.call('HGET', KEYS[1], 'userId'), redis.call('HGET', KEYS[1], 'threadId'), tostring(v)})
redis.call('ZADD', KEYS[2], ARGV[2], follow)
redis.call('SPUBLISH', ARGV[1], v)
return {v, follow}
