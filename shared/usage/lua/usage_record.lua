#!lua
-- Record one model call's usage: the ledger entry and every total it counts in, in one step.
-- KEYS: log, user_totals, user_state, and the user's partition of: app_totals, app_users, all_users
-- ARGV: channel entry userId costMicros, then groups (prefixes: '' for the whole, 'm:<model>:', ...),
--   then '|', then field/amount pairs
local groups, pairs_at = {}, 0
for i = 5, #ARGV do
  if ARGV[i] == '|' then pairs_at = i + 1 break end
  groups[#groups + 1] = ARGV[i]
end
redis.call('XADD', KEYS[1], '*', 'e', ARGV[2])
for _, key in ipairs({KEYS[2], KEYS[4]}) do
  for _, prefix in ipairs(groups) do
    for i = pairs_at, #ARGV, 2 do
      local n = tonumber(ARGV[i + 1])
      if n ~= 0 then redis.call('HINCRBY', key, prefix .. ARGV[i], n) end
    end
  end
end
redis.call('ZINCRBY', KEYS[5], tonumber(ARGV[4]), ARGV[3])
redis.call('SADD', KEYS[6], ARGV[3])
local v = redis.call('HINCRBY', KEYS[3], 'version', 1)
redis.call('SPUBLISH', ARGV[1], v)
return v
