#!lua
-- Set (or clear) one message's metadata: its body's last field and the thread's metadata hash
-- together (metadata.lua). A body stored before messages had metadata gets the field.
-- KEYS: thread, msgs, meta
-- ARGV: channel messageId metadata ('' clears) caller (a writer of the thread; '' trusted code)
-- Returns the thread's new version.
-- include: metadata.lua
-- include: access.lua
local denied = refused(KEYS[1], ARGV[4], 'writer')
if denied then return redis.error_reply(denied) end
local id = ARGV[2]
local body = redis.call('HGET', KEYS[2], id)
if not body then return redis.error_reply('NOTFOUND message ' .. id) end
local old = redis.call('HGET', KEYS[3], id)
if old then  -- the body ends with it: null in its place
  body = string.sub(body, 1, #body - #old - 1) .. 'null}'
elseif not ends_without_metadata(body) then  -- stored before the field was
  body = string.sub(body, 1, #body - 1) .. ',"metadata":null}'
end
if ARGV[3] == '' then
  redis.call('HSET', KEYS[2], id, body)
  redis.call('HDEL', KEYS[3], id)
else
  redis.call('HSET', KEYS[2], id, put_metadata(body, ARGV[3]))
  redis.call('HSET', KEYS[3], id, ARGV[3])
end
local v = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('SPUBLISH', ARGV[1], v)
return v
