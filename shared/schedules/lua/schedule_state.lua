#!lua
-- Pause, resume or delete a schedule, by its owner (caller '': server code, any schedule).
-- KEYS: schedule, due, userList, userVersion   ARGV: scheduleId op caller nextAt channel
-- op: pause | resume (fires next at nextAt) | delete. Returns the list's version.
-- A firing under way (taken by a scheduler, not recorded: its due time is a lease, not nextAt) is not cut
-- short by a pause: the schedule is 'pausing' until that firing is recorded (schedule_fired), so a scheduler
-- that died in the middle of its action has it done again, once, by another.
local owner = redis.call('HGET', KEYS[1], 'userId')
if not owner or (ARGV[3] ~= '' and owner ~= ARGV[3]) then
  return redis.error_reply('NOTFOUND schedule ' .. ARGV[1] .. ' not found')
end
if ARGV[2] == 'delete' then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
elseif ARGV[2] == 'pause' then
  local due = redis.call('ZSCORE', KEYS[2], ARGV[1])
  if due and tonumber(due) ~= tonumber(redis.call('HGET', KEYS[1], 'nextAt')) then
    redis.call('HSET', KEYS[1], 'pausing', '1')
  else
    redis.call('HSET', KEYS[1], 'paused', '1')
    redis.call('ZREM', KEYS[2], ARGV[1])
  end
else
  if redis.call('HGET', KEYS[1], 'paused') == '0' then
    if redis.call('HDEL', KEYS[1], 'pausing') == 0 then return tonumber(redis.call('GET', KEYS[4]) or '0') end
  else
    redis.call('HSET', KEYS[1], 'paused', '0', 'nextAt', ARGV[4])
    redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
  end
end
local v = redis.call('INCR', KEYS[4])
redis.call('SPUBLISH', ARGV[5], v)
return v
