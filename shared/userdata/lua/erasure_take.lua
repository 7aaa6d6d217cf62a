#!lua
-- A runner takes a user's erasure (shared.erasure) unless another one's lease on it still runs.
-- KEYS: erasure, erasures (its partition's)   ARGV: userId now leaseMs
-- Returns the step to start at, or -1 (finished, or held by another runner).
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return -1 end
local due = redis.call('ZSCORE', KEYS[2], ARGV[1])
if due and tonumber(due) > tonumber(ARGV[2]) then return -1 end
redis.call('ZADD', KEYS[2], tonumber(ARGV[2]) + tonumber(ARGV[3]), ARGV[1])
return tonumber(redis.call('HGET', KEYS[1], 'step') or '0')
