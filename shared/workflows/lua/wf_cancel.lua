#!lua
-- Cancel a run (its child runs are told to end): ARGV run, now, retention s, reason, tomb.
-- tomb '1' (a child run whose parent ended): a run not started yet is marked canceled, so that
-- its start, a follow-up still to come, never runs it. Returns {1 if it was still going, follow-ups}.
-- include: run.lua
local now, retention = tonumber(ARGV[2]), tonumber(ARGV[3])
if ARGV[5] == '1' and redis.call('EXISTS', RK) == 0 then
  redis.call('HSET', RK, 'runId', ARGV[1], 'status', 'canceled', 'finishedAt', now)
  redis.call('EXPIRE', RK, retention)
  return wf_reply(0)
end
return wf_reply(wf_finish_run(ARGV[1], 'canceled', nil, cjson.encode({code = 'canceled', message = ARGV[4]}),
                              now, retention))
