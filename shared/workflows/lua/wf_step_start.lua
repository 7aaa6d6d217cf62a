#!lua
-- A worker takes one attempt of a step: ARGV run, stepId, attempt, now, lease ms.
-- Returns {{'run', input JSON, userId, workflow name, limited} or {'skip'} (taken already, another
-- attempt, or the run ended), follow-ups}.
-- include: run.lua
local run, id, attempt, now, lease = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local s = wf_step(id)
if not s or s.status ~= 'scheduled' or s.attempt ~= attempt then return wf_reply({'skip'}) end
if redis.call('HGET', RK, 'status') ~= 'running' and id ~= 'onComplete' then return wf_reply({'skip'}) end
s.status, s.startedAt = 'running', now
s.firstStartedAt = s.firstStartedAt or now
wf_put(s)
redis.call('ZADD', TIMERS, now + lease, wf_timer(run, id))
wf_bump(now)
return wf_reply({'run', redis.call('HGET', INPUTS, id) or '{}', redis.call('HGET', RK, 'userId'),
                 redis.call('HGET', RK, 'name'), redis.call('HGET', RK, 'limited') or '0'})
