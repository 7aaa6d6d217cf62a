#!lua
-- The deleter of a doomed content's bytes claims it: from now on an upload of the same content
-- waits until the bytes are gone (blob_take.lua answers -1).
-- KEYS: blob, blob_files, doomed   ARGV: hash now
-- Returns 1 when the bytes may be deleted, 0 when a record holds the content again.
redis.call('ZREM', KEYS[3], ARGV[1])
if redis.call('SCARD', KEYS[2]) > 0 then return 0 end
redis.call('HSET', KEYS[1], 'deleting', ARGV[2])
return 1
