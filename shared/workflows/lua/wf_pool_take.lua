#!lua
-- A queued run asks its kind's pool for a place (a follow-up of its start), in the pool's slot.
-- KEYS: running, queue, released, outbox (the pool's partition)   ARGV: run, max running, now
-- A place given is told to the run by a follow-up (wf_grant.lua). A run that gave its place back
-- already (it ended while this follow-up was on its way) gets none.
-- Returns {1, grantFollowUp} (a place), {2} (queued) or {0} (ended already).
if redis.call('ZSCORE', KEYS[3], ARGV[1]) then return {0} end
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then
  if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then
    redis.call('ZADD', KEYS[2], 'NX', ARGV[3], ARGV[1])
    return {2}
  end
  redis.call('SADD', KEYS[1], ARGV[1])
end
local grant = cmsgpack.pack({'wf.grant', ARGV[1]})
redis.call('ZADD', KEYS[4], ARGV[3], grant)
return {1, grant}
