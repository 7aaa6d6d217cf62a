#!lua
-- One edit of a canvas and its snippet, in one step: the canvas written over the version it was
-- read at (CONFLICT otherwise: another edit came first), the snippet stored with its indexes.
-- KEYS: thread, snippets, snippet_index, snippet_documents, vector_ops, canvases
-- ARGV: channel caller canvasId expectedVersion canvasBody snippetId snippetBody threadId
--   canvasBody starts with {"version":<expectedVersion + 1>
-- Returns {thread version, snippetId}. caller: a writer of the thread ('' trusted code)
-- include: snippets.lua
-- include: access.lua
local denied = refused(KEYS[1], ARGV[2], 'writer')
if denied then return redis.error_reply(denied) end
local current = redis.call('HGET', KEYS[6], ARGV[3])
local version = 0
if current then version = tonumber(string.match(current, '^{"version":(%d+)')) end
if version ~= tonumber(ARGV[4]) then
  return redis.error_reply('CONFLICT the canvas is at version ' .. version .. ', not ' .. ARGV[4])
end
redis.call('HSET', KEYS[6], ARGV[3], ARGV[5])
put_snippet(KEYS, ARGV[6], ARGV[7], ARGV[3], ARGV[8])
local v = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('SPUBLISH', ARGV[1], v)
return {v, ARGV[6]}
