#!lua
-- Take the members of a due set that are due now, each by one taker: a taken one is due again a lease
-- later (for when its taker dies before it is done). Each member has a hash (prefix .. member, in the due
-- set's slot) with a 'takes' counter; one whose field `ready` is not `readyValue` leaves the set.
-- KEYS: due   ARGV: now leaseMs limit prefix ready readyValue shown
-- Returns {member, the hash's field `shown`, take, ...}.
local out = {}
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  local key = ARGV[4] .. id
  local found = redis.call('HMGET', key, ARGV[5], ARGV[7])
  if found[1] ~= ARGV[6] then
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
