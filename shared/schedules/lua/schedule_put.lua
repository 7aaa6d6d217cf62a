#!lua
-- Create a schedule; one of the same id (a resent request) is left as it is.
-- KEYS: schedule, due, userList, userVersion   ARGV: scheduleId userId definition createdAt nextAt channel max
-- Returns {created 1|0, listVersion}.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {0, tonumber(redis.call('GET', KEYS[4]) or '0')}
end
if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[7]) then
  return redis.error_reply('CONFLICT at most ' .. ARGV[7] .. ' schedules per user')
end
redis.call('HSET', KEYS[1], 'definition', ARGV[3], 'userId', ARGV[2], 'nextAt', ARGV[5], 'paused', '0',
  'fired', 0, 'takes', 0)
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
local v = redis.call('INCR', KEYS[4])
redis.call('SPUBLISH', ARGV[6], v)
return {1, v}
