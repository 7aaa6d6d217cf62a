#!lua
-- One connection's presence in a thread: viewing until ARGV[4] (0: it leaves), typing until
-- ARGV[5] (-1: as it was, 0: it stopped). Entries past their time are dropped on the way; a change
-- anyone should see (someone came, left, expired, started or went on typing, stopped) bumps the
-- version and is published. A refresh of one still there changes nothing.
-- KEYS: thread, presence, typing, version   ARGV: channel now member until typingUntil
-- Returns the presence version.
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('NOTFOUND thread') end
local now, member = ARGV[2], ARGV[3]
local until_ms, typing_ms = tonumber(ARGV[4]), tonumber(ARGV[5])
local changed = redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now) > 0
changed = redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now) > 0 or changed
if until_ms == 0 then
  changed = redis.call('ZREM', KEYS[2], member) > 0 or changed
  changed = redis.call('ZREM', KEYS[3], member) > 0 or changed
else
  changed = redis.call('ZADD', KEYS[2], until_ms, member) > 0 or changed
  if typing_ms > 0 then
    redis.call('ZADD', KEYS[3], typing_ms, member)
    changed = true  -- (every tab hears how long it goes on)
  elseif typing_ms == 0 then
    changed = redis.call('ZREM', KEYS[3], member) > 0 or changed
  end
end
if changed then
  local v = redis.call('INCR', KEYS[4])
  redis.call('SPUBLISH', ARGV[1], v)
  return v
end
return tonumber(redis.call('GET', KEYS[4]) or '0')
