-- Where each rule stands, without taking anything: for the rate-limit status a client shows.
-- KEYS: one state hash per rule   ARGV: now, then per rule: kind limit periodMs capacity
-- Returns per rule {remaining, retryAfterMs for one more}
local now = tonumber(ARGV[1])
local out = {}
for i = 1, #KEYS do
  local base = 2 + (i - 1) * 4
  local kind, limit, period, cap = ARGV[base], tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3])
  local s = redis.call('HMGET', KEYS[i], 'v', 'at')
  local v, at = tonumber(s[1]), tonumber(s[2])
  if kind == 'bucket' then
    local rate = limit / period
    v = math.min(cap, (v or cap) + math.max(0, now - (at or now)) * rate)
    out[i] = {math.floor(v), v >= 1 and 0 or math.ceil((1 - v) / rate)}
  else
    local w = math.floor(now / period)
    if at ~= w then v = 0 end
    local left = limit - v
    out[i] = {left, left > 0 and 0 or ((w + 1) * period - now)}
  end
end
return out
