#!lua
-- The run's pool gave it a place (a follow-up of wf_pool_take.lua or wf_pool_release.lua): a
-- queued run starts running. ARGV run, now. Returns {1 when it started now, follow-ups}.
-- include: run.lua
local run, now = ARGV[1], tonumber(ARGV[2])
if redis.call('HGET', RK, 'status') ~= 'queued' then return wf_reply(0) end
redis.call('HSET', RK, 'status', 'running')
wf_wake(run, now)
wf_tell_user(run, now)
wf_bump(now)
return wf_reply(1)
