#!lua
-- A version of a document was indexed (or failed): store its record, if it is still the newest.
-- KEYS: docs, state, content, old_chunks ('' entries allowed)   ARGV: channel key version body
-- Returns 1 when stored, 0 when a newer version replaced it meanwhile (or it was deleted).
local cur = redis.call('HGET', KEYS[1], ARGV[2])
if not cur or cjson.decode(cur).version ~= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[4])
redis.call('DEL', KEYS[3])
if KEYS[4] then redis.call('UNLINK', KEYS[4]) end
local v = redis.call('HINCRBY', KEYS[2], 'version', 1)
redis.call('SPUBLISH', ARGV[1], v)
return 1
