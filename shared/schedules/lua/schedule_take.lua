#!lua
-- Take the schedules due now, each by one taker: it is due again a lease later (for when its taker dies
-- before it records the firing). KEYS: due   ARGV: now leaseMs limit schedulePrefix (same slot)
-- Returns {scheduleId, slot (its nextAt), take, ...}; a schedule gone or paused leaves the set.
local out = {}
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  local key = ARGV[4] .. id
  local found = redis.call('HMGET', key, 'paused', 'nextAt')
  if found[1] ~= '0' then
    redis.call('ZREM', KEYS[1], id)
  else
    local take = redis.call('HINCRBY', key, 'takes', 1)
    redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), id)
    out[#out + 1] = id
    out[#out + 1] = found[2]
    out[#out + 1] = take
  end
end
return out
