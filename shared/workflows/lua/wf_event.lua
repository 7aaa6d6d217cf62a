-- An event for a run: ARGV run, name, payload JSON, now, most events kept unclaimed.
-- The first step waiting for that name gets it; else it is kept for the next one that waits.
-- Returns {'delivered', stepId}, {'kept'}, {'full'}, {'ended'} or {'missing'}.
-- include: run.lua
local run, name, payload, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local status = redis.call('HGET', wf_key(run, 'run'), 'status')
if not status then return {'missing'} end
if status ~= 'running' and status ~= 'queued' then return {'ended'} end
local best = nil
local steps = redis.call('HGETALL', wf_key(run, 'steps'))
for i = 2, #steps, 2 do
  local s = cjson.decode(steps[i])
  if s.kind == 'event' and s.status == 'waiting' and s.event == name and (best == nil or s.seq < best.seq) then
    best = s
  end
end
if best then
  wf_settle(run, best, true, payload, now)
  wf_bump(run, now)
  return {'delivered', best.id}
end
local q = wf_key(run, 'events')
if redis.call('LLEN', q) >= tonumber(ARGV[5]) then return {'full'} end
redis.call('RPUSH', q, name .. '\n' .. payload)
wf_bump(run, now)
return {'kept'}
