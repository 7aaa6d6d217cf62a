#!lua
-- A running attempt is alive: ARGV run, stepId, attempt, now, lease ms. Returns {0 when the
-- attempt is no longer wanted (the run was canceled, or the attempt was given up as lost), else 1; {}}.
-- include: run.lua
local run, id, attempt = ARGV[1], ARGV[2], tonumber(ARGV[3])
local s = wf_step(id)
if not s or s.status ~= 'running' or s.attempt ~= attempt then return wf_reply(0) end
redis.call('ZADD', TIMERS, tonumber(ARGV[4]) + tonumber(ARGV[5]), wf_timer(run, id))
return wf_reply(1)
