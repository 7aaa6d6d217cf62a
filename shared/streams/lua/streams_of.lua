-- A thread's streams with their text as of their seq (included by the scripts that read them).
-- streams_of(thread_streams, stream key prefix, text key suffix) (shared.keys.stream_key_parts)
local function streams_of(zkey, prefix, suffix)
  local out = {}
  for _, sid in ipairs(redis.call('ZRANGE', zkey, 0, -1)) do
    local key = prefix .. sid
    local f = redis.call('HMGET', key, 'order', 'stepOrder', 'status', 'agentName', 'seq', 'messageId')
    if f[1] then
      out[#out + 1] = {sid, f[1], f[2], f[3], f[4] or '', f[5], f[6] or '', redis.call('GET', key .. suffix) or ''}
    end
  end
  return out
end
