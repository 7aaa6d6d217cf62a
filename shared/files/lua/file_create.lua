-- Keep a new file record; its content's reference count goes up in the same step.
-- KEYS: files, idle, blobs, deleting, user_files   ARGV: fileId record hash now staleMs
-- Returns the content's count (1: the bytes must be stored), or -1 while the same content is
-- being deleted by the vacuum (try again shortly).
local since = redis.call('HGET', KEYS[4], ARGV[3])
if since and tonumber(ARGV[4]) - tonumber(since) < tonumber(ARGV[5]) then return -1 end
redis.call('HDEL', KEYS[4], ARGV[3])
local count = redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
redis.call('ZADD', KEYS[5], ARGV[4], ARGV[1])
return count
