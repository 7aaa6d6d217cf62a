#!lua
-- Take `cost` from every rule at once, or from none: rate limits checked together.
-- KEYS: one state hash per rule   ARGV: now cost channel check, then per rule: kind limit periodMs capacity
--   kind 'bucket': a token bucket refilled at limit/periodMs up to capacity;
--   kind 'window': at most `limit` per fixed window of periodMs.
--   channel: told when something was taken ('' : nobody); check '1': only say whether it would be allowed
-- Returns {allowed 1|0, retryAfterMs (-1: more than the rule ever allows), index of the refusing rule}
-- include: limits.lua
local now, cost = tonumber(ARGV[1]), tonumber(ARGV[2])
local states, wait, refused = {}, 0, 0
for i = 1, #KEYS do
  local kind, limit, period, cap = limit_rule(ARGV, 5 + (i - 1) * 4)
  local v, at = limit_level(KEYS[i], kind, limit, period, cap, now)
  local need
  if kind == 'bucket' then
    need = cost > cap and -1 or (cost > v and math.ceil((cost - v) * period / limit) or 0)
  else
    need = cost > limit and -1 or ((v + cost > limit) and ((at + 1) * period - now) or 0)
  end
  states[i] = {kind, v, at, period, cap, limit}
  if need == -1 then
    wait, refused = -1, i
  elseif need > 0 and wait ~= -1 and need > wait then
    wait, refused = need, i
  end
end
if refused > 0 then return {0, wait, refused} end
if ARGV[4] == '1' then return {1, 0, 0} end
for i = 1, #KEYS do
  local kind, v, at, period, cap, limit = unpack(states[i])
  if kind == 'bucket' then
    redis.call('HSET', KEYS[i], 'v', tostring(v - cost), 'at', at)
    redis.call('PEXPIRE', KEYS[i], math.ceil(period * cap / limit) + 60000)
  else
    redis.call('HSET', KEYS[i], 'v', v + cost, 'at', at)
    redis.call('PEXPIRE', KEYS[i], period + 60000)
  end
end
if ARGV[3] ~= '' then redis.call('SPUBLISH', ARGV[3], now) end
return {1, 0, 0}
