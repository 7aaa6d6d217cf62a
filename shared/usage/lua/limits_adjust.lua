#!lua
-- Settle a reservation: give back (delta < 0) or take more (delta > 0) than was taken, unchecked
-- (a reply's real usage). A bucket may go below zero: later requests wait until it refills.
-- KEYS: one state hash per rule   ARGV: now delta channel, then per rule: kind limit periodMs capacity
-- include: limits.lua
local now, delta = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 1, #KEYS do
  local kind, limit, period, cap = limit_rule(ARGV, 4 + (i - 1) * 4)
  local v, at = limit_level(KEYS[i], kind, limit, period, cap, now)
  if kind == 'bucket' then
    redis.call('HSET', KEYS[i], 'v', tostring(math.min(cap, v - delta)), 'at', at)
  else
    redis.call('HSET', KEYS[i], 'v', math.max(0, v + delta), 'at', at)
  end
end
if ARGV[3] ~= '' then redis.call('SPUBLISH', ARGV[3], now) end
return 1
