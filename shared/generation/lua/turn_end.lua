#!lua
-- A job's turn ends: the job leaves its thread's queue and the stop requests, and gives the lock
-- back if it still holds it. KEYS: lock, queue, aborts   ARGV: token, job id ("" for none)
if ARGV[2] ~= '' then
  redis.call('LREM', KEYS[2], 0, ARGV[2])
  redis.call('SREM', KEYS[3], ARGV[2])
end
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
