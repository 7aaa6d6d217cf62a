#!lua
-- A due timer of the run: ARGV member ("d|run" or "s|run|stepId"), now, lease ms.
-- Returns {{'drive', run} | {'step', run, stepId, attempt} (a worker must take it now) | {'none'}, follow-ups}.
-- The timer moves a lease ahead, so one caller takes it, and it comes due again if that caller dies.
-- include: run.lua
local member, now, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local due = redis.call('ZSCORE', TIMERS, member)
if not due or tonumber(due) > now then return wf_reply({'none'}) end
local rest = string.sub(member, 3)
local status = redis.call('HGET', RK, 'status')
if string.sub(member, 1, 1) == 'd' then
  if status ~= 'running' then
    redis.call('ZREM', TIMERS, member)
    return wf_reply({'none'})
  end
  redis.call('ZADD', TIMERS, now + lease, member)
  return wf_reply({'drive', rest})
end
local bar = string.find(rest, '|', 1, true)
local run, id = string.sub(rest, 1, bar - 1), string.sub(rest, bar + 1)
local s = wf_step(id)
if not s or not WF_ACTIVE[s.status] or (status ~= 'running' and id ~= 'onComplete') then
  redis.call('ZREM', TIMERS, member)
  return wf_reply({'none'})
end
if s.status == 'sleeping' then
  wf_settle(run, s, true, 'null', now)
  wf_bump(now)
  return wf_reply({'none'})
end
if s.status == 'waiting' then
  s.errorKind = 'timeout'
  wf_settle(run, s, false, 'no event "' .. (s.event or '') .. '" came in time', now)
  wf_bump(now)
  return wf_reply({'none'})
end
if s.status == 'running' then  -- its lease ran out: the worker running it is gone
  if s.attempt >= s.attempts then
    s.errorKind = 'lost'
    wf_settle(run, s, false, 'the worker running it stopped', now)
    wf_bump(now)
    return wf_reply({'none'})
  end
  s.lastError = 'the worker running it stopped'
  s.status, s.attempt = 'scheduled', s.attempt + 1
elseif s.status == 'retrying' then
  s.status, s.attempt = 'scheduled', s.attempt + 1
end
s.dueAt = now
wf_put(s)
redis.call('ZADD', TIMERS, now + lease, member)
wf_bump(now)
return wf_reply({'step', run, id, tostring(s.attempt)})
