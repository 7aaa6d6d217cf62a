-- Settle a reservation: give back (delta < 0) or take more (delta > 0) than was taken, unchecked
-- (a reply's real usage). A bucket may go below zero: later requests wait until it refills.
-- KEYS: one state hash per rule   ARGV: now delta channel, then per rule: kind limit periodMs capacity
local now, delta = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 1, #KEYS do
  local base = 4 + (i - 1) * 4
  local kind, limit, period, cap = ARGV[base], tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3])
  local s = redis.call('HMGET', KEYS[i], 'v', 'at')
  local v, at = tonumber(s[1]), tonumber(s[2])
  if kind == 'bucket' then
    v = math.min(cap, (v or cap) + math.max(0, now - (at or now)) * limit / period)
    redis.call('HSET', KEYS[i], 'v', tostring(math.min(cap, v - delta)), 'at', now)
  else
    local w = math.floor(now / period)
    if at == w then redis.call('HSET', KEYS[i], 'v', math.max(0, v + delta), 'at', w) end
  end
end
if ARGV[3] ~= '' then redis.call('PUBLISH', ARGV[3], now) end
return 1
