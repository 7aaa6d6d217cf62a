-- What every workflow script shares: a run starts, a step settles, a run ends. Included, not run alone.
-- include: keys.lua

local WF_ACTIVE = {scheduled = true, running = true, retrying = true, sleeping = true, waiting = true}

-- a change of the run: its version, and notices to its watchers and its user's list
local function wf_bump(run, now)
  local rk = wf_key(run, 'run')
  local v = redis.call('HINCRBY', rk, 'version', 1)
  redis.call('HSET', rk, 'updatedAt', now)
  redis.call('SPUBLISH', wf_channel(run), v)
  local user = redis.call('HGET', rk, 'userId')
  if user then
    redis.call('SPUBLISH', wf_user_channel(user), redis.call('INCR', wf_user(user) .. ':v'))
  end
  redis.call('SPUBLISH', WF_ALL_CHANNEL, redis.call('INCR', WF_ALL_VERSION))
  return v
end

-- the run's next replay pass is due now
local function wf_wake(run, now)
  if redis.call('HGET', wf_key(run, 'run'), 'status') == 'running' then
    redis.call('ZADD', WF_TIMERS, now, wf_drive_timer(run))
  end
end

local function wf_step(run, id)
  local raw = redis.call('HGET', wf_key(run, 'steps'), id)
  if raw then return cjson.decode(raw) end
  return nil
end

local function wf_put(run, s) redis.call('HSET', wf_key(run, 'steps'), s.id, cjson.encode(s)) end

-- a step ends with its result (JSON text) or its error (a message); the run goes on
local function wf_settle(run, s, ok, value, now)
  s.finishedAt = now
  if ok then
    s.status = 'completed'
    redis.call('HSET', wf_key(run, 'results'), s.id, value)
  else
    s.status = 'failed'
    s.error = value
    s.errorKind = s.errorKind or 'failed'
  end
  wf_put(run, s)
  redis.call('ZREM', WF_TIMERS, wf_timer(run, s.id))
  wf_wake(run, now)
end

-- a run takes a place in its kind's pool, or waits in the pool's queue
local function wf_pool_take(name, max_running, run, now)
  local pool = wf_pool(name)
  if max_running > 0 and redis.call('SCARD', pool) >= max_running then
    redis.call('RPUSH', pool .. ':queue', run)
    return 'queued'
  end
  redis.call('SADD', pool, run)
  redis.call('ZADD', WF_TIMERS, now, wf_drive_timer(run))
  return 'running'
end

local function wf_start_run(run, name, user, args, now, max_running, parent, parent_step, on_complete)
  local rk = wf_key(run, 'run')
  if redis.call('EXISTS', rk) == 1 then return 0 end
  local status = wf_pool_take(name, max_running, run, now)
  redis.call('HSET', rk, 'runId', run, 'name', name, 'userId', user, 'status', status, 'args', args,
    'createdAt', now, 'updatedAt', now, 'version', 0, 'parent', parent, 'parentStep', parent_step,
    'onComplete', on_complete, 'maxRunning', max_running, 'seq', 0)
  redis.call('ZADD', wf_user(user), now, run)
  redis.call('ZADD', WF_RUNS, now, run)
  redis.call('HSET', WF_OWNERS, run, user)
  wf_bump(run, now)
  return 1
end

local function wf_expire(run, retention)
  for _, part in ipairs(WF_PARTS) do redis.call('EXPIRE', wf_key(run, part), retention) end
end

-- a run ends (completed, failed or canceled): its waiting steps and child runs are canceled, its
-- pool place goes to the next queued run, its parent's step settles, its onComplete is due
local wf_finish_run
wf_finish_run = function(run, status, result, err, now, retention)
  local rk = wf_key(run, 'run')
  local cur = redis.call('HGET', rk, 'status')
  if cur ~= 'running' and cur ~= 'queued' then return 0 end
  local pool = wf_pool(redis.call('HGET', rk, 'name'))
  if cur == 'queued' then redis.call('LREM', pool .. ':queue', 0, run) end
  redis.call('HSET', rk, 'status', status, 'finishedAt', now)
  if result then redis.call('HSET', rk, 'result', result) end
  if err then redis.call('HSET', rk, 'error', err) end
  redis.call('ZREM', WF_TIMERS, wf_drive_timer(run))
  local steps = redis.call('HGETALL', wf_key(run, 'steps'))
  for i = 2, #steps, 2 do
    local s = cjson.decode(steps[i])
    if WF_ACTIVE[s.status] then
      s.status = 'canceled'
      s.finishedAt = now
      wf_put(run, s)
      redis.call('ZREM', WF_TIMERS, wf_timer(run, s.id))
      if s.kind == 'child' and s.child then
        wf_finish_run(s.child, 'canceled', nil,
          cjson.encode({code = 'canceled', message = 'its parent run ended'}), now, retention)
      end
    end
  end
  if redis.call('SREM', pool, run) == 1 then
    local max_running = tonumber(redis.call('HGET', rk, 'maxRunning') or '0')
    while max_running == 0 or redis.call('SCARD', pool) < max_running do
      local nxt = redis.call('LPOP', pool .. ':queue')
      if not nxt then break end
      if redis.call('HGET', wf_key(nxt, 'run'), 'status') == 'queued' then
        redis.call('SADD', pool, nxt)
        redis.call('HSET', wf_key(nxt, 'run'), 'status', 'running')
        wf_wake(nxt, now)
        wf_bump(nxt, now)
      end
    end
  end
  local parent = redis.call('HGET', rk, 'parent')
  if parent and parent ~= '' then
    local ps = wf_step(parent, redis.call('HGET', rk, 'parentStep'))
    if ps and ps.status == 'waiting' then
      if status == 'completed' then
        wf_settle(parent, ps, true, result or 'null', now)
      else
        ps.errorKind = status == 'canceled' and 'canceled' or 'failed'
        wf_settle(parent, ps, false, cjson.decode(err).message, now)
      end
      wf_bump(parent, now)
    end
  end
  local on_complete = redis.call('HGET', rk, 'onComplete')
  if on_complete and on_complete ~= '' then
    local seq = redis.call('HINCRBY', rk, 'seq', 1)
    local attempts = cjson.decode(on_complete).retry.attempts
    wf_put(run, {id = 'onComplete', kind = 'job', name = 'onComplete', status = 'scheduled', attempt = 1,
                 attempts = attempts, seq = seq, createdAt = now, dueAt = now})
    redis.call('HSET', wf_key(run, 'inputs'), 'onComplete', on_complete)
    redis.call('ZADD', WF_TIMERS, now, wf_timer(run, 'onComplete'))
  end
  wf_expire(run, retention)
  wf_bump(run, now)
  return 1
end
