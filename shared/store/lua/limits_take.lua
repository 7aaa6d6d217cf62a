-- Take `cost` from every rule at once, or from none: rate limits checked together.
-- KEYS: one state hash per rule   ARGV: now cost channel, then per rule: kind limit periodMs capacity
--   channel: told when something was taken ('' : nobody)
--   kind 'bucket': a token bucket refilled at limit/periodMs up to capacity;
--   kind 'window': at most `limit` per fixed window of periodMs.
-- Returns {allowed 1|0, retryAfterMs, index of the rule that refused (1-based, 0: none)}
local now, cost = tonumber(ARGV[1]), tonumber(ARGV[2])
local states, wait, refused = {}, 0, 0
for i = 1, #KEYS do
  local base = 4 + (i - 1) * 4
  local kind, limit, period, cap = ARGV[base], tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3])
  local s = redis.call('HMGET', KEYS[i], 'v', 'at')
  local v, at = tonumber(s[1]), tonumber(s[2])
  local need
  if kind == 'bucket' then
    local rate = limit / period
    v = math.min(cap, (v or cap) + math.max(0, now - (at or now)) * rate)
    need = cost > v and math.ceil((cost - v) / rate) or 0
    if cost > cap then need = -1 end
  else
    local w = math.floor(now / period)
    if at ~= w then v = 0 end
    at = w
    need = (v + cost > limit) and ((w + 1) * period - now) or 0
    if cost > limit then need = -1 end
  end
  states[i] = {kind, v, at, period, cap}
  if need == -1 then
    wait, refused = -1, i
  elseif need > 0 and wait ~= -1 and need > wait then
    wait, refused = need, i
  end
end
if refused > 0 then return {0, wait, refused} end
for i = 1, #KEYS do
  local kind, v, at, period, cap = unpack(states[i])
  if kind == 'bucket' then
    redis.call('HSET', KEYS[i], 'v', tostring(v - cost), 'at', now)
    redis.call('PEXPIRE', KEYS[i], math.ceil(period * cap / tonumber(ARGV[4 + (i - 1) * 4 + 1])) + 60000)
  else
    redis.call('HSET', KEYS[i], 'v', v + cost, 'at', at)
    redis.call('PEXPIRE', KEYS[i], period + 60000)
  end
end
if ARGV[3] ~= '' then redis.call('PUBLISH', ARGV[3], now) end
return {1, 0, 0}
