#!lua
-- What one replay pass decided, applied only if nothing changed since it read the journal:
-- ARGV run, version read, now, lease ms, retention s, ops (JSON list: new steps, or the run's end).
-- Returns {{'ok', stepIds to hand to workers now...}, follow-ups}, {{'stale'}, {}} or {{'ended'}, {}}.
-- include: run.lua
local run, now, lease, retention = ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if redis.call('HGET', RK, 'status') ~= 'running' then
  redis.call('ZREM', TIMERS, wf_drive_timer(run))
  return wf_reply({'ended'})
end
if redis.call('HGET', RK, 'version') ~= ARGV[2] then return wf_reply({'stale'}) end
local out = {'ok'}
local changed, again = false, false
for _, op in ipairs(cjson.decode(ARGV[6])) do
  if op.op == 'finish' then
    redis.call('ZREM', TIMERS, wf_drive_timer(run))
    wf_finish_run(run, op.status, op.result, op.error, now, retention)
    return wf_reply(out)
  end
  if redis.call('HEXISTS', STEPS, op.id) == 0 then
    local s = {id = op.id, kind = op.kind, name = op.name, attempt = 0, attempts = op.attempts or 1,
               seq = redis.call('HINCRBY', RK, 'seq', 1), createdAt = now}
    if op.input then redis.call('HSET', INPUTS, op.id, op.input) end
    if op.kind == 'job' then
      s.status, s.attempt, s.dueAt = 'scheduled', 1, now
      redis.call('ZADD', TIMERS, now + lease, wf_timer(run, op.id))
      out[#out + 1] = op.id
    elseif op.kind == 'sleep' then
      s.status, s.dueAt = 'sleeping', now + op.delayMs
      redis.call('ZADD', TIMERS, s.dueAt, wf_timer(run, op.id))
    elseif op.kind == 'event' then
      s.event = op.event
      local q = EVENTS
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
        redis.call('HSET', RESULTS, op.id, payload)
        again = true
      else
        s.status = 'waiting'
        if op.timeoutMs then
          s.dueAt = now + op.timeoutMs
          redis.call('ZADD', TIMERS, s.dueAt, wf_timer(run, op.id))
        end
      end
    elseif op.kind == 'child' then
      s.status, s.child = 'waiting', op.child.runId
      wf_follow(now, 'wf.start', op.child.runId, op.child.name, redis.call('HGET', RK, 'userId'), op.child.args,
                op.child.maxRunning, run, op.id, op.child.onComplete, redis.call('HGET', RK, 'limited') or '0')
    end
    wf_put(s)
    changed = true
  end
end
redis.call('ZREM', TIMERS, wf_drive_timer(run))
if again then wf_wake(run, now) end
if changed then wf_bump(now) end
return wf_reply(out)
