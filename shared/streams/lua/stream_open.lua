#!lua
-- Open a stream for a reply message. KEYS: thread, stream, thread_streams, active, aborts
-- ARGV: channel streamId order stepOrder agentName userId messageId now member promptMessageId worker jobId
-- A job asked to stop while it was queued (replies_abort_queued.lua) opens its stream as aborted.
-- Returns {version, status}.
-- include: ../../lua/score.lua
local status = 'streaming'
if ARGV[12] ~= '' and redis.call('SISMEMBER', KEYS[5], ARGV[12]) == 1 then status = 'aborted' end
redis.call('HSET', KEYS[2], 'streamId', ARGV[2], 'order', ARGV[3], 'stepOrder', ARGV[4],
  'agentName', ARGV[5], 'userId', ARGV[6], 'messageId', ARGV[7], 'status', status,
  'seq', 0, 'startedAt', ARGV[8], 'heartbeat', ARGV[8], 'promptMessageId', ARGV[10], 'worker', ARGV[11],
  'jobId', ARGV[12])
redis.call('ZADD', KEYS[3], score_of(tonumber(ARGV[3]), tonumber(ARGV[4])), ARGV[2])
redis.call('ZADD', KEYS[4], ARGV[8], ARGV[9])
local v = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('SPUBLISH', ARGV[1], v)
return {v, status}
