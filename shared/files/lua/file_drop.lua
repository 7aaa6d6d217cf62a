-- Drop a file record no message references: idle since before the cutoff (the vacuum), or
-- any time (cutoff = now: an upload whose bytes could not be stored).
-- KEYS: files, refs, idle, blobs, deleting, user_files   ARGV: fileId cutoff now
-- Returns the content hash when no record shares the content any more (the bytes go next,
-- marked as being deleted), 1 when dropped with the content still shared, 0 when kept.
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return 0
end
local since = redis.call('ZSCORE', KEYS[3], ARGV[1])
local rec = redis.call('HGET', KEYS[1], ARGV[1])
if not rec then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return 0
end
if not since or tonumber(since) > tonumber(ARGV[2]) then return 0 end
local hash = cjson.decode(rec).hash
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
if redis.call('HINCRBY', KEYS[4], hash, -1) > 0 then return 1 end
redis.call('HDEL', KEYS[4], hash)
redis.call('HSET', KEYS[5], hash, ARGV[3])
return hash
