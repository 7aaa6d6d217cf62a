#!lua flags=no-writes
-- Where each rule stands, without taking anything: for the rate-limit status a client shows.
-- KEYS: one state hash per rule   ARGV: now, then per rule: kind limit periodMs capacity
-- Returns per rule {remaining, retryAfterMs for one more}
-- include: limits.lua
local now = tonumber(ARGV[1])
local out = {}
for i = 1, #KEYS do
  local kind, limit, period, cap = limit_rule(ARGV, 2 + (i - 1) * 4)
  local v, at = limit_level(KEYS[i], kind, limit, period, cap, now)
  if kind == 'bucket' then
    out[i] = {math.floor(v), v >= 1 and 0 or math.ceil((1 - v) * period / limit)}
  else
    out[i] = {limit - v, limit - v > 0 and 0 or ((at + 1) * period - now)}
  end
end
return out
