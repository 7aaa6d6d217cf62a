-- What every workflow script shares: a run starts, a step settles, a run ends. Included, not run alone.
-- Every script works on one run and takes its keys (shared.keys.workflow_keys): the run's parts, then
-- its partition's timers, index of runs, owners, list version and outbox. What must change elsewhere
-- (the user's list, a work pool, a parent or child run) is a follow-up recorded in the outbox in the
-- same step (shared.storage.outbox); the script returns {its result, the follow-ups} to the writer.
local RK, STEPS, RESULTS, INPUTS, EVENTS = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local TIMERS, RUNS, OWNERS, ALL_VERSION, OUTBOX = KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]
local RUN_CHANNEL = string.sub(RK, 1, #RK - 4) .. ':chg'  -- keys.workflow_channel
local WF_PARTS = {RK, STEPS, RESULTS, INPUTS, EVENTS}
local WF_ACTIVE = {scheduled = true, running = true, retrying = true, sleeping = true, waiting = true}
local FOLLOWS = {}

local function wf_timer(run, id) return 's|' .. run .. '|' .. id end
local function wf_drive_timer(run) return 'd|' .. run end

local function wf_follow(now, ...)
  local entry = cmsgpack.pack({...})
  redis.call('ZADD', OUTBOX, now, entry)
  FOLLOWS[#FOLLOWS + 1] = entry
end

-- the script's reply: its result and the follow-ups it recorded
local function wf_reply(result) return {result, FOLLOWS} end

-- the user's list of runs (and the playground's of every run) hears of the run: it started, got its
-- place or ended
local function wf_tell_user(run, now)
  wf_follow(now, 'wf.user', redis.call('HGET', RK, 'userId'), run, redis.call('HGET', RK, 'createdAt'))
end

-- a change of the run: its version, a notice to its watchers, the version of the list of every run
local function wf_bump(now)
  local v = redis.call('HINCRBY', RK, 'version', 1)
  redis.call('HSET', RK, 'updatedAt', now)
  redis.call('SPUBLISH', RUN_CHANNEL, v)
  redis.call('INCR', ALL_VERSION)
  return v
end

-- the run's next replay pass is due now
local function wf_wake(run, now)
  if redis.call('HGET', RK, 'status') == 'running' then
    redis.call('ZADD', TIMERS, now, wf_drive_timer(run))
  end
end

local function wf_step(id)
  local raw = redis.call('HGET', STEPS, id)
  if raw then return cjson.decode(raw) end
  return nil
end

local function wf_put(s) redis.call('HSET', STEPS, s.id, cjson.encode(s)) end

-- a step ends with its result (JSON text) or its error (a message); the run goes on
local function wf_settle(run, s, ok, value, now)
  s.finishedAt = now
  if ok then
    s.status = 'completed'
    redis.call('HSET', RESULTS, s.id, value)
  else
    s.status = 'failed'
    s.error = value
    s.errorKind = s.errorKind or 'failed'
  end
  wf_put(s)
  redis.call('ZREM', TIMERS, wf_timer(run, s.id))
  wf_wake(run, now)
end

-- a run of a kind with a cap on running runs waits, queued, until its pool gives it a place
-- (wf_pool_take.lua, then wf_grant.lua)
local function wf_start_run(run, name, user, args, now, max_running, parent, parent_step, on_complete, limited)
  if redis.call('EXISTS', RK) == 1 then return 0 end
  local status = max_running > 0 and 'queued' or 'running'
  redis.call('HSET', RK, 'runId', run, 'name', name, 'userId', user, 'status', status, 'args', args,
    'createdAt', now, 'updatedAt', now, 'version', 0, 'parent', parent, 'parentStep', parent_step,
    'onComplete', on_complete, 'maxRunning', max_running, 'seq', 0, 'limited', limited)
  if status == 'running' then
    redis.call('ZADD', TIMERS, now, wf_drive_timer(run))
  else
    wf_follow(now, 'wf.pool', 'take', name, run, max_running)
  end
  redis.call('ZADD', RUNS, now, run)
  redis.call('HSET', OWNERS, run, user)
  wf_tell_user(run, now)
  wf_bump(now)
  return 1
end

local function wf_expire(retention)
  for _, key in ipairs(WF_PARTS) do redis.call('EXPIRE', key, retention) end
end

-- a run ends (completed, failed or canceled): its waiting steps are canceled and its child runs
-- told to end, its pool place goes back, its parent's step settles, its onComplete is due
local function wf_finish_run(run, status, result, err, now, retention)
  local cur = redis.call('HGET', RK, 'status')
  if cur ~= 'running' and cur ~= 'queued' then return 0 end
  redis.call('HSET', RK, 'status', status, 'finishedAt', now)
  if result then redis.call('HSET', RK, 'result', result) end
  if err then redis.call('HSET', RK, 'error', err) end
  wf_follow(now, 'webhook.workflow', run, now)  -- its webhook event (shared.webhooks.runs), told once
  redis.call('ZREM', TIMERS, wf_drive_timer(run))
  local steps = redis.call('HGETALL', STEPS)
  for i = 2, #steps, 2 do
    local s = cjson.decode(steps[i])
    if WF_ACTIVE[s.status] then
      s.status = 'canceled'
      s.finishedAt = now
      wf_put(s)
      redis.call('ZREM', TIMERS, wf_timer(run, s.id))
      if s.kind == 'child' and s.child then
        wf_follow(now, 'wf.cancel', s.child, 'its parent run ended', retention)
      end
    end
  end
  local max_running = tonumber(redis.call('HGET', RK, 'maxRunning') or '0')
  if max_running > 0 then
    wf_follow(now, 'wf.pool', 'release', redis.call('HGET', RK, 'name'), run, max_running)
  end
  local parent = redis.call('HGET', RK, 'parent')
  if parent and parent ~= '' then
    wf_follow(now, 'wf.child', parent, redis.call('HGET', RK, 'parentStep'), status, result or '', err or '',
              retention)
  end
  local on_complete = redis.call('HGET', RK, 'onComplete')
  if on_complete and on_complete ~= '' then
    local seq = redis.call('HINCRBY', RK, 'seq', 1)
    local attempts = cjson.decode(on_complete).retry.attempts
    wf_put({id = 'onComplete', kind = 'job', name = 'onComplete', status = 'scheduled', attempt = 1,
            attempts = attempts, seq = seq, createdAt = now, dueAt = now})
    redis.call('HSET', INPUTS, 'onComplete', on_complete)
    redis.call('ZADD', TIMERS, now, wf_timer(run, 'onComplete'))
  end
  wf_expire(retention)
  wf_tell_user(run, now)
  wf_bump(now)
  return 1
end
