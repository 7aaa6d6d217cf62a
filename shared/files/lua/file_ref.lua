#!lua
-- A message's reference to a file gained or lost (a follow-up of refs.lua), in the file's slot.
-- KEYS: file, file_refs, idle   ARGV: member ("threadId messageId") version on now fileId
-- The last version wins whatever the order follow-ups come in; a file dropped meanwhile is left alone.
-- Returns the file's reference count, or -1 when the follow-up changed nothing.
if redis.call('HEXISTS', KEYS[1], 'rec') == 0 then return -1 end
local v = tonumber(ARGV[2])
local cur = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if math.abs(cur) >= v then return -1 end
local on = ARGV[3] == '1'
redis.call('HSET', KEYS[2], ARGV[1], on and ARGV[2] or ('-' .. ARGV[2]))
if on then redis.call('HDEL', KEYS[1], 'pin:' .. ARGV[1]) end  -- the reference its save pinned for is here
if on and cur <= 0 then
  redis.call('ZREM', KEYS[3], ARGV[5])
  return redis.call('HINCRBY', KEYS[1], 'refs', 1)
elseif not on and cur > 0 then
  local refs = redis.call('HINCRBY', KEYS[1], 'refs', -1)
  if refs <= 0 then redis.call('ZADD', KEYS[3], ARGV[4], ARGV[5]) end
  return refs
end
return tonumber(redis.call('HGET', KEYS[1], 'refs') or '0')
