#!lua
-- A dropped file record lets its content go (a follow-up of file_drop.lua), in the content's slot.
-- KEYS: blob_files, blob_gone, doomed   ARGV: fileId hash now goneMs
-- A content no record holds is doomed: the vacuum (or the dropper, at once) deletes its bytes.
-- Returns 1 when the content is doomed.
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[3]) - tonumber(ARGV[4]))
redis.call('PEXPIRE', KEYS[2], ARGV[4])
if redis.call('SCARD', KEYS[1]) > 0 then return 0 end
redis.call('ZADD', KEYS[3], 'NX', ARGV[3], ARGV[2])
return 1
