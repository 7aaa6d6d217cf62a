#!lua
-- Record that a schedule fired for its slot and when it fires next; only the latest take's record counts.
-- A schedule paused while this firing was under way ('pausing': schedule_state) is paused now.
-- KEYS: schedule, due, userVersion   ARGV: scheduleId take slot nextAt now channel
-- Returns 1, or 0 when the take was stale (another taker since) or the schedule is gone.
local found = redis.call('HMGET', KEYS[1], 'takes', 'nextAt', 'paused', 'pausing')
if found[1] ~= ARGV[2] or found[2] ~= ARGV[3] then return 0 end
redis.call('HINCRBY', KEYS[1], 'fired', 1)
redis.call('HSET', KEYS[1], 'lastFiredAt', ARGV[5], 'lastSlot', ARGV[3], 'nextAt', ARGV[4])
if found[4] == '1' then
  redis.call('HSET', KEYS[1], 'paused', '1')
  redis.call('HDEL', KEYS[1], 'pausing')
  redis.call('ZREM', KEYS[2], ARGV[1])
elseif found[3] == '0' then
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
else
  redis.call('ZREM', KEYS[2], ARGV[1])
end
local v = redis.call('INCR', KEYS[3])
redis.call('SPUBLISH', ARGV[6], v)
return 1
