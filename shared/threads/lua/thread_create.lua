#!lua
-- KEYS: thread, outbox   ARGV: threadId userId title summary status metadata now  ->  {threadId, createdAt, followUp}
-- The owner's list is changed by the follow-up (user_threads_follow.lua), in the owner's slot.
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.error_reply('CONFLICT thread exists') end
redis.call('HSET', KEYS[1], 'threadId', ARGV[1], 'userId', ARGV[2], 'title', ARGV[3],
  'summary', ARGV[4], 'status', ARGV[5], 'metadata', ARGV[6], 'createdAt', ARGV[7],
  'updatedAt', ARGV[7], 'maxOrder', 0, 'version', 1)
local follow = cmsgpack.pack({'threads.user', 'add', ARGV[2], ARGV[1], ARGV[7]})
redis.call('ZADD', KEYS[2], ARGV[7], follow)
return {ARGV[1], ARGV[7], follow}
