-- A due timer: ARGV member ("d|run" or "s|run|stepId"), now, lease ms.
-- Returns {'drive', run}, {'step', run, stepId, attempt} (a worker must take it now) or {'none'}.
-- The timer moves a lease ahead, so one caller takes it, and it comes due again if that caller dies.
-- include: run.lua
local member, now, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local due = redis.call('ZSCORE', WF_TIMERS, member)
if not due or tonumber(due) > now then return {'none'} end
local rest = string.sub(member, 3)
if string.sub(member, 1, 1) == 'd' then
  if redis.call('HGET', wf_key(rest, 'run'), 'status') ~= 'running' then
    redis.call('ZREM', WF_TIMERS, member)
    return {'none'}
  end
  redis.call('ZADD', WF_TIMERS, now + lease, member)
  return {'drive', rest}
end
local bar = string.find(rest, '|', 1, true)
local run, id = string.sub(rest, 1, bar - 1), string.sub(rest, bar + 1)
local s = wf_step(run, id)
local status = redis.call('HGET', wf_key(run, 'run'), 'status')
if not s or not WF_ACTIVE[s.status] or (status ~= 'running' and id ~= 'onComplete') then
  redis.call('ZREM', WF_TIMERS, member)
  return {'none'}
end
if s.status == 'sleeping' then
  wf_settle(run, s, true, 'null', now)
  wf_bump(run, now)
  return {'none'}
end
if s.status == 'waiting' then
  s.errorKind = 'timeout'
  wf_settle(run, s, false, 'no event "' .. (s.event or '') .. '" came in time', now)
  wf_bump(run, now)
  return {'none'}
end
if s.status == 'running' then  -- its lease ran out: the worker running it is gone
  if s.attempt >= s.attempts then
    s.errorKind = 'lost'
    wf_settle(run, s, false, 'the worker running it stopped', now)
    wf_bump(run, now)
    return {'none'}
  end
  s.lastError = 'the worker running it stopped'
  s.status, s.attempt = 'scheduled', s.attempt + 1
elseif s.status == 'retrying' then
  s.status, s.attempt = 'scheduled', s.attempt + 1
end
s.dueAt = now
wf_put(run, s)
redis.call('ZADD', WF_TIMERS, now + lease, member)
wf_bump(run, now)
return {'step', run, id, tostring(s.attempt)}
