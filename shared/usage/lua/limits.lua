-- A rule's arguments and its level now, shared by the rate-limit scripts (included, not run alone).

local function limit_rule(args, base)
  return args[base], tonumber(args[base + 1]), tonumber(args[base + 2]), tonumber(args[base + 3])
end
local function limit_level(key, kind, limit, period, cap, now)
  local s = redis.call('HMGET', key, 'v', 'at')
  local v, at = tonumber(s[1]), tonumber(s[2])
  if kind == 'bucket' then  -- the tokens in the bucket now (refilled since at), and now
    return math.min(cap, (v or cap) + math.max(0, now - (at or now)) * limit / period), now
  end
  local w = math.floor(now / period)  -- the count in this window, and the window
  if at ~= w then v = 0 end
  return v or 0, w
end
