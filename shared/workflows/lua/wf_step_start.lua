-- A worker takes one attempt of a step: ARGV run, stepId, attempt, now, lease ms.
-- Returns {'run', input JSON, userId, workflow name, limited} or {'skip'} (taken already, another attempt, or
-- the run ended).
-- include: run.lua
local run, id, attempt, now, lease = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local s = wf_step(run, id)
local rk = wf_key(run, 'run')
if not s or s.status ~= 'scheduled' or s.attempt ~= attempt then return {'skip'} end
if redis.call('HGET', rk, 'status') ~= 'running' and id ~= 'onComplete' then return {'skip'} end
s.status, s.startedAt = 'running', now
s.firstStartedAt = s.firstStartedAt or now
wf_put(run, s)
redis.call('ZADD', WF_TIMERS, now + lease, wf_timer(run, id))
wf_bump(run, now)
return {'run', redis.call('HGET', wf_key(run, 'inputs'), id) or '{}', redis.call('HGET', rk, 'userId'),
        redis.call('HGET', rk, 'name'), redis.call('HGET', rk, 'limited') or '0'}
