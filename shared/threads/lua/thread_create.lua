-- KEYS: thread, user_threads, user_state, users   ARGV: threadId userId title summary status metadata now userChannel  ->  {userVersion, threadId, createdAt}
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.error_reply('CONFLICT thread exists') end
redis.call('HSET', KEYS[1], 'threadId', ARGV[1], 'userId', ARGV[2], 'title', ARGV[3],
  'summary', ARGV[4], 'status', ARGV[5], 'metadata', ARGV[6], 'createdAt', ARGV[7],
  'updatedAt', ARGV[7], 'maxOrder', 0, 'version', 1)
local seq = redis.call('HINCRBY', KEYS[3], 'seq', 1)
redis.call('ZADD', KEYS[2], seq, ARGV[1])
local uv = redis.call('HINCRBY', KEYS[3], 'version', 1)
redis.call('ZADD', KEYS[4], ARGV[7], ARGV[2])
redis.call('SPUBLISH', ARGV[8], uv)
return {uv, ARGV[1], ARGV[7]}
