#!lua
-- Keep a thread's turn a lease longer, if this job still holds it. KEYS: lock   ARGV: token, lease ms.
-- 1 if extended.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
