#!lua
-- Take the deliveries due now, each by one taker: it is due again a lease later (for when its worker dies).
-- KEYS: due   ARGV: now leaseMs limit deliveryKeyPrefix (the deliveries' hashes share the due set's slot)
-- Returns {deliveryId, attempt, take, ...}; a delivery ended or expired leaves the set.
local out = {}
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  local key = ARGV[4] .. id
  local found = redis.call('HMGET', key, 'status', 'attempt')
  if found[1] ~= 'pending' then
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
