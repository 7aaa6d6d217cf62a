#!lua
-- Add (body given) or delete (body '') a snippet. KEYS: thread, snippets, snippet_index, vector_ops
-- ARGV: channel snippetId body caller threadId  ->  {version, changed, snippetId}
-- caller: a writer of the thread ('' trusted code)
-- include: ../../indexing/lua/index_op.lua
-- include: access.lua
local denied = refused(KEYS[1], ARGV[4], 'writer')
if denied then return redis.error_reply(denied) end
local changed
if ARGV[3] == '' then
  changed = redis.call('HDEL', KEYS[2], ARGV[2])
  redis.call('ZREM', KEYS[3], ARGV[2])
  if changed == 1 then queue_op(KEYS[4], 'forget_snippet', ARGV[2]) end
else
  changed = 1
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
  local seq = redis.call('HINCRBY', KEYS[1], 'snippetSeq', 1)
  redis.call('ZADD', KEYS[3], seq, ARGV[2])
  queue_op(KEYS[4], 'embed_snippet', ARGV[5] .. '/' .. ARGV[2])
end
local v = tonumber(redis.call('HGET', KEYS[1], 'version'))
if changed == 1 then
  v = redis.call('HINCRBY', KEYS[1], 'version', 1)
  redis.call('SPUBLISH', ARGV[1], v)
end
return {v, changed, ARGV[2]}
