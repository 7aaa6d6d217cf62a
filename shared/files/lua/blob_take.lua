#!lua
-- A file record holds the content (a follow-up of file_create.lua), in the content's slot.
-- KEYS: blob, blob_files, blob_gone, doomed   ARGV: fileId hash now staleMs
-- Returns how many records hold the content (1: its bytes may be missing), 0 when the record
-- already let it go (a late follow-up), or -1 while its bytes are being deleted (try again shortly).
if redis.call('ZSCORE', KEYS[3], ARGV[1]) then return 0 end
local since = redis.call('HGET', KEYS[1], 'deleting')
if since and tonumber(ARGV[3]) - tonumber(since) < tonumber(ARGV[4]) then return -1 end
redis.call('HDEL', KEYS[1], 'deleting')
redis.call('ZREM', KEYS[4], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
return redis.call('SCARD', KEYS[2])
