-- What one replay pass decided, applied only if nothing changed since it read the journal:
-- ARGV run, version read, now, lease ms, retention s, ops (JSON list: new steps, or the run's end).
-- Returns {'ok', stepIds to hand to workers now...}, {'stale'} or {'ended'}.
-- include: run.lua
local run, now, lease, retention = ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local rk = wf_key(run, 'run')
if redis.call('HGET', rk, 'status') ~= 'running' then
  redis.call('ZREM', WF_TIMERS, wf_drive_timer(run))
  return {'ended'}
end
if redis.call('HGET', rk, 'version') ~= ARGV[2] then return {'stale'} end
local out = {'ok'}
local changed, again = false, false
for _, op in ipairs(cjson.decode(ARGV[6])) do
  if op.op == 'finish' then
    redis.call('ZREM', WF_TIMERS, wf_drive_timer(run))
    wf_finish_run(run, op.status, op.result, op.error, now, retention)
    return out
  end
  if redis.call('HEXISTS', wf_key(run, 'steps'), op.id) == 0 then
    local s = {id = op.id, kind = op.kind, name = op.name, attempt = 0, attempts = op.attempts or 1,
               seq = redis.call('HINCRBY', rk, 'seq', 1), createdAt = now}
    if op.input then redis.call('HSET', wf_key(run, 'inputs'), op.id, op.input) end
    if op.kind == 'job' then
      s.status, s.attempt, s.dueAt = 'scheduled', 1, now
      redis.call('ZADD', WF_TIMERS, now + lease, wf_timer(run, op.id))
      out[#out + 1] = op.id
    elseif op.kind == 'sleep' then
      s.status, s.dueAt = 'sleeping', now + op.delayMs
      redis.call('ZADD', WF_TIMERS, s.dueAt, wf_timer(run, op.id))
    elseif op.kind == 'event' then
      s.event = op.event
      local q = wf_key(run, 'events')
      local payload = nil
      for _, item in ipairs(redis.call('LRANGE', q, 0, -1)) do
        local sep = string.find(item, '\n', 1, true)
        if string.sub(item, 1, sep - 1) == op.event then
          redis.call('LREM', q, 1, item)
          payload = string.sub(item, sep + 1)
          break
        end
      end
      if payload then  -- it came before the run waited for it
        s.status, s.finishedAt = 'completed', now
        redis.call('HSET', wf_key(run, 'results'), op.id, payload)
        again = true
      else
        s.status = 'waiting'
        if op.timeoutMs then
          s.dueAt = now + op.timeoutMs
          redis.call('ZADD', WF_TIMERS, s.dueAt, wf_timer(run, op.id))
        end
      end
    elseif op.kind == 'child' then
      s.status, s.child = 'waiting', op.child.runId
      wf_put(run, s)  -- before the child starts: a child that ends at once settles it
      if wf_start_run(op.child.runId, op.child.name, redis.call('HGET', rk, 'userId'), op.child.args, now,
                      op.child.maxRunning, run, op.id, op.child.onComplete) == 1 then
        redis.call('HSET', wf_key(op.child.runId, 'run'), 'limited', redis.call('HGET', rk, 'limited') or '0')
      end
      s = wf_step(run, op.id)
    end
    wf_put(run, s)
    changed = true
  end
end
redis.call('ZREM', WF_TIMERS, wf_drive_timer(run))
if again then wf_wake(run, now) end
if changed then wf_bump(run, now) end
return out
