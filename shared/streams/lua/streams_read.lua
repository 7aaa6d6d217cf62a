-- The thread's streams with their text as of their seq, read in one step.
-- KEYS: thread_streams   ARGV: stream key prefix, text key suffix (shared.keys.stream_key_parts)
local out = {}
for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local key = ARGV[1] .. sid
  local f = redis.call('HMGET', key, 'order', 'stepOrder', 'status', 'agentName', 'seq', 'messageId')
  if f[1] then
    out[#out + 1] = {sid, f[1], f[2], f[3], f[4] or '', f[5], f[6] or '', redis.call('GET', key .. ARGV[2]) or ''}
  end
end
return out
