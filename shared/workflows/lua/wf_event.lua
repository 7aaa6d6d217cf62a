#!lua
-- An event for a run: ARGV run, name, payload JSON, now, most events kept unclaimed.
-- The first step waiting for that name gets it; else it is kept for the next one that waits.
-- Returns {{'delivered', stepId} | {'kept'} | {'full'} | {'ended'} | {'missing'}, follow-ups}.
-- include: run.lua
local run, name, payload, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local status = redis.call('HGET', RK, 'status')
if not status then return wf_reply({'missing'}) end
if status ~= 'running' and status ~= 'queued' then return wf_reply({'ended'}) end
local best = nil
local steps = redis.call('HGETALL', STEPS)
for i = 2, #steps, 2 do
  local s = cjson.decode(steps[i])
  if s.kind == 'event' and s.status == 'waiting' and s.event == name and (best == nil or s.seq < best.seq) then
    best = s
  end
end
if best then
  wf_settle(run, best, true, payload, now)
  wf_bump(now)
  return wf_reply({'delivered', best.id})
end
if redis.call('LLEN', EVENTS) >= tonumber(ARGV[5]) then return wf_reply({'full'}) end
redis.call('RPUSH', EVENTS, name .. '\n' .. payload)
wf_bump(now)
return wf_reply({'kept'})
