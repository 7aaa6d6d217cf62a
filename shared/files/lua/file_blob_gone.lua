-- The vacuum deleted a content's bytes: it is no longer being deleted (unless taken again).
-- KEYS: blobs, deleting   ARGV: hash
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then redis.call('HDEL', KEYS[2], ARGV[1]) end
return 1
