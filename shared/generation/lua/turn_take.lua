#!lua
-- Take a thread's turn for a job in one step: the lock (with its lease), then, when the job is at
-- the head of the thread's queue (or has no job id), its "began" mark.
-- KEYS: lock, queue, began   ARGV: token, lease ms, job id ("" for none), began ttl s
-- {0}: the lock is someone else's. {1, first}: the turn is the job's (first: 1 if it had not
-- begun before). {2, head}: the lock is held for the job, but another job heads the queue
-- (the caller sees to that head, then gives the lock back).
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {0} end
if ARGV[3] == '' then return {1, 1} end
local head = redis.call('LINDEX', KEYS[2], 0)
if head and head ~= ARGV[3] then return {2, head} end
if redis.call('SET', KEYS[3], '1', 'NX', 'EX', ARGV[4]) then return {1, 1} end
return {1, 0}
