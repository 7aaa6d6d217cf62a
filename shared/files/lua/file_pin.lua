#!lua
-- Before a message referencing a file is saved (in the thread's slot): the file must be there and
-- the message's user's (its writer's), and must stay until the reference reaches it (file_ref.lua takes the pin
-- away then; a save that failed leaves it to run out at `until`; `until` 0 takes it away now).
-- KEYS: file, idle   ARGV: owner until now fileId member ("threadId messageId")
-- Returns 1, or 0 when the file is not there or not the owner's.
local rec = redis.call('HGET', KEYS[1], 'rec')
if not rec or cjson.decode(rec).userId ~= ARGV[1] then return 0 end
if ARGV[2] == '0' then
  redis.call('HDEL', KEYS[1], 'pin:' .. ARGV[5])
  return 1
end
redis.call('HSET', KEYS[1], 'pin:' .. ARGV[5], ARGV[2])
redis.call('ZADD', KEYS[2], 'XX', ARGV[3], ARGV[4])
return 1
