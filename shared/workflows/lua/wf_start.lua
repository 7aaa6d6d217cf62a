-- Start a workflow run, once per idempotency key: ARGV run, name, user, args (JSON), now,
-- max running of its kind (0: any), onComplete input (JSON or ''), idempotency key ('' none), retention s,
-- limited ('1': started by a client: its agent steps count in the user's rate limits; child runs inherit it)
-- include: run.lua
local run = ARGV[1]
local idem = ARGV[8]
if idem ~= '' then
  local existing = redis.call('GET', idem)
  if existing then return {existing, 0} end
  redis.call('SET', idem, run, 'EX', tonumber(ARGV[9]))
end
local created = wf_start_run(run, ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), '', '', ARGV[7])
if created == 1 then redis.call('HSET', wf_key(run, 'run'), 'limited', ARGV[10]) end
return {run, created}
