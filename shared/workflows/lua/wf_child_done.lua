#!lua
-- A child run ended (a follow-up of its end): the parent's step waiting for it settles.
-- ARGV run (the parent), stepId, the child's status, result JSON or '', error JSON or '', now.
-- Returns {1 when the step settled now, follow-ups}.
-- include: run.lua
local run, id, status, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[6])
local s = wf_step(id)
if not s or s.status ~= 'waiting' or redis.call('HGET', RK, 'status') ~= 'running' then return wf_reply(0) end
if status == 'completed' then
  wf_settle(run, s, true, ARGV[4] ~= '' and ARGV[4] or 'null', now)
else
  s.errorKind = status == 'canceled' and 'canceled' or 'failed'
  wf_settle(run, s, false, cjson.decode(ARGV[5]).message, now)
end
wf_bump(now)
return wf_reply(1)
