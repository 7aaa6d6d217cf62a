#!lua
-- The follow-up of a thread's create, update or delete in its owner's slot (shared.storage.outbox):
-- idempotent, whatever order the follow-ups of one thread id come in.
-- KEYS: user_threads, user_state, listed, users, gone   ARGV: op threadId createdAt userId now userChannel goneTtlS
-- op add: list the thread (unless it was deleted, or is listed already, or a later thread of that id is)
-- op remove: unlist it (unless a later thread of that id is listed) and remember it is gone
-- op touch: the list changed (a title...)
-- Returns 1 when the list changed.
local op, tid, created = ARGV[1], ARGV[2], tonumber(ARGV[3])
local listed = tonumber(redis.call('HGET', KEYS[3], tid) or '-1')
if op == 'add' then
  if redis.call('EXISTS', KEYS[5]) == 1 or listed >= created then return 0 end
  local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
  redis.call('ZADD', KEYS[1], seq, tid)
  redis.call('HSET', KEYS[3], tid, ARGV[3])
  redis.call('ZADD', KEYS[4], ARGV[5], ARGV[4])
elseif op == 'remove' then
  redis.call('SET', KEYS[5], '1', 'EX', ARGV[7])
  if listed > created or redis.call('ZSCORE', KEYS[1], tid) == false then return 0 end
  redis.call('ZREM', KEYS[1], tid)
  redis.call('HDEL', KEYS[3], tid)
end
redis.call('SPUBLISH', ARGV[6], redis.call('HINCRBY', KEYS[2], 'version', 1))
return 1
