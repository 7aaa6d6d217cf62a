-- One consistent read of a page of messages, newest first.
-- KEYS: thread, msgs, index   ARGV: maxScore ('+inf' or '(<score>'), limit
local head = redis.call('HMGET', KEYS[1], 'userId', 'version')
if not head[1] then return redis.error_reply('NOTFOUND thread') end
local hits = redis.call('ZREVRANGEBYSCORE', KEYS[3], ARGV[1], '-inf', 'WITHSCORES', 'LIMIT', 0, ARGV[2])
local bodies = {}
if #hits > 0 then
  local ids = {}
  for i = 1, #hits, 2 do ids[#ids + 1] = hits[i] end
  bodies = redis.call('HMGET', KEYS[2], unpack(ids))
end
return {head[1], head[2], hits, bodies}
