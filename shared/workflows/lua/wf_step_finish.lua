#!lua
-- An attempt ended: ARGV run, stepId, attempt, now, ok ('1'/'0'), result JSON or error message,
-- retry in ms (-1: no more attempts), error kind, retention s. Returns {0 when the attempt was no
-- longer wanted (its result is dropped), else 1; follow-ups}.
-- include: run.lua
local run, id, attempt, now = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local s = wf_step(id)
if not s or s.status ~= 'running' or s.attempt ~= attempt then return wf_reply(0) end
local retry = tonumber(ARGV[7])
if ARGV[5] == '1' then
  wf_settle(run, s, true, ARGV[6], now)
elseif retry >= 0 then
  s.status, s.lastError, s.dueAt = 'retrying', ARGV[6], now + retry
  wf_put(s)
  redis.call('ZADD', TIMERS, s.dueAt, wf_timer(run, id))
else
  s.errorKind = ARGV[8]
  wf_settle(run, s, false, ARGV[6], now)
end
if redis.call('HGET', RK, 'status') ~= 'running' then wf_expire(tonumber(ARGV[9])) end
wf_bump(now)
return wf_reply(1)
