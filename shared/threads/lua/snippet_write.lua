#!lua
-- Add (body given) or delete (body '') a snippet.
-- KEYS: thread, snippets, snippet_index, snippet_documents, vector_ops
-- ARGV: channel snippetId body caller threadId document('' none)  ->  {version, changed, snippetId}
-- caller: a writer of the thread ('' trusted code)
-- include: snippets.lua
-- include: access.lua
local denied = refused(KEYS[1], ARGV[4], 'writer')
if denied then return redis.error_reply(denied) end
local changed = 1
if ARGV[3] == '' then
  changed = drop_snippet(KEYS, ARGV[2])
else
  put_snippet(KEYS, ARGV[2], ARGV[3], ARGV[6], ARGV[5])
end
local v = tonumber(redis.call('HGET', KEYS[1], 'version'))
if changed == 1 then
  v = redis.call('HINCRBY', KEYS[1], 'version', 1)
  redis.call('SPUBLISH', ARGV[1], v)
end
return {v, changed, ARGV[2]}
