#!lua
-- Ask a stream to stop. KEYS: thread, stream   ARGV: channel
-- The worker sees it at its next flush or heartbeat and stores the partial text as failed.
if redis.call('HGET', KEYS[2], 'status') ~= 'streaming' then return 0 end
redis.call('HSET', KEYS[2], 'status', 'aborted')
local v = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('SPUBLISH', ARGV[1], v)
return 1
