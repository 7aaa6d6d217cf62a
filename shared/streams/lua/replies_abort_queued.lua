#!lua
-- Ask queued replies to stop before they start: the job opens its stream already aborted
-- (stream_open.lua) and ends at once. KEYS: queue, aborts   ARGV: ttlMs [jobId...]
-- Without job ids, every job in the thread's queue. Returns the job ids newly asked to stop.
local ids = {}
if #ARGV > 1 then
  for i = 2, #ARGV do
    if redis.call('LPOS', KEYS[1], ARGV[i]) then ids[#ids + 1] = ARGV[i] end
  end
else
  ids = redis.call('LRANGE', KEYS[1], 0, -1)
end
local marked = {}
for _, id in ipairs(ids) do
  if redis.call('SADD', KEYS[2], id) == 1 then marked[#marked + 1] = id end
end
if #marked > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[1]) end
return marked
