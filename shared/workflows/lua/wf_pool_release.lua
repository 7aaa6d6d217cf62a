#!lua
-- An ended run gives its place back (a follow-up of its end), in the pool's slot: the first queued
-- runs take the places free, each told by a follow-up (wf_grant.lua).
-- KEYS: running, queue, released, outbox (the pool's partition)   ARGV: run, max running, now, releasedMs
-- Returns the follow-ups telling the runs given a place now.
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', tonumber(ARGV[3]) - tonumber(ARGV[4]))
local granted = {}
while redis.call('SCARD', KEYS[1]) < tonumber(ARGV[2]) do
  local nxt = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
  if not nxt then break end
  redis.call('ZREM', KEYS[2], nxt)
  redis.call('SADD', KEYS[1], nxt)
  local grant = cmsgpack.pack({'wf.grant', nxt})
  redis.call('ZADD', KEYS[4], ARGV[3], grant)
  granted[#granted + 1] = grant
end
return granted
