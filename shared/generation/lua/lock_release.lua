#!lua
-- Give back a thread's turn, if this job still holds it. KEYS: lock   ARGV: token. 1 if released.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
