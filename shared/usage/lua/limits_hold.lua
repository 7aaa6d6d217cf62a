#!lua
-- Hold a place among the replies in flight of every concurrency rule at once, or none.
-- KEYS: one sorted set per rule (holders by lease expiry)   ARGV: now leaseMs holder, then per rule: limit
--   holder '': only check whether there is room (a send about to queue a reply)
-- Returns {1, 0} when held (or there is room), {0, index of the full rule}
local now, lease, holder = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
for i = 1, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)  -- leases of replies whose worker died
  local mine = holder ~= '' and redis.call('ZSCORE', KEYS[i], holder)
  if not mine and redis.call('ZCARD', KEYS[i]) >= tonumber(ARGV[3 + i]) then return {0, i} end
end
if holder ~= '' then
  for i = 1, #KEYS do
    redis.call('ZADD', KEYS[i], now + lease, holder)
    redis.call('PEXPIRE', KEYS[i], lease * 2)
  end
end
return {1, 0}
