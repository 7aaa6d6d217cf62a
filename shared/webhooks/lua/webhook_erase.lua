#!lua
-- A user's data leaves their deliveries not yet sent: each is 'erased' (never attempted again, its
-- body gone); its record stays, without data, so the event is not recorded for delivery again.
-- KEYS: due, then each delivery's hash   ARGV: each delivery's id (in KEYS' order)
-- Returns how many were pending.
local erased = 0
for i = 2, #KEYS do
  if redis.call('HGET', KEYS[i], 'status') == 'pending' then
    redis.call('HSET', KEYS[i], 'status', 'erased')
    erased = erased + 1
  end
  redis.call('HDEL', KEYS[i], 'body')
  redis.call('ZREM', KEYS[1], ARGV[i - 1])
end
return erased
