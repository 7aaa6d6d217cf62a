-- A page of a thread's messages, newest first (included by the scripts that read one).
-- page(thread, msgs, index, maxScore ('+inf' or '(<score>'), limit[, minScore]) -> {userId, version, hits, bodies},
-- or an error reply when the thread does not exist.
local function page(thread, msgs, index, max_score, limit, min_score)
  local head = redis.call('HMGET', thread, 'userId', 'version')
  if not head[1] then return redis.error_reply('NOTFOUND thread') end
  local hits = redis.call('ZREVRANGEBYSCORE', index, max_score, min_score or '-inf', 'WITHSCORES', 'LIMIT', 0, limit)
  local bodies = {}
  if #hits > 0 then
    local ids = {}
    for i = 1, #hits, 2 do ids[#ids + 1] = hits[i] end
    bodies = redis.call('HMGET', msgs, unpack(ids))
  end
  return {head[1], head[2], hits, bodies}
end
