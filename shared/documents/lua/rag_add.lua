#!lua
-- Add or replace a document by key; identical content (same hash) of a document that did not fail is skipped.
-- KEYS: docs, idx, state, content, vector_ops, namespaces
-- ARGV: channel key hash body content now opPrefix(namespace\31key\31) namespace
--   body holds "version":-1, "readyVersion":-1, "chunks":-1 and "createdAt":-1, filled in here from the
--   current record: a version settled while this one was being prepared stays the searchable one.
-- Returns {namespace version, document version, skipped 0|1, readyVersion, chunks, createdAt}
-- include: ../../indexing/lua/index_op.lua
local old = redis.call('HGET', KEYS[1], ARGV[2])
local version, ready, chunks, created = 1, 0, 0, tonumber(ARGV[6])
if old then
  local doc = cjson.decode(old)
  if doc.hash == ARGV[3] and doc.status ~= 'failed' then
    return {tonumber(redis.call('HGET', KEYS[3], 'version') or '0'), doc.version, 1, 0, 0, 0}
  end
  version, ready, chunks, created = doc.version + 1, doc.readyVersion or 0, doc.chunks or 0, doc.createdAt or created
end
local function fill(body, field, value, last)
  local needle = '"' .. field .. '":-1'
  local s, e = string.find(body, needle, 1, true)
  while last do  -- the last one (metadata, encoded before it, may hold the same text)
    local s2, e2 = string.find(body, needle, e + 1, true)
    if not s2 then break end
    s, e = s2, e2
  end
  return string.sub(body, 1, s - 1) .. '"' .. field .. '":' .. string.format('%d', value) .. string.sub(body, e + 1)
end
local body = fill(fill(fill(ARGV[4], 'version', version, false), 'readyVersion', ready, false), 'chunks', chunks, false)
body = fill(body, 'createdAt', created, true)
redis.call('HSET', KEYS[1], ARGV[2], body)
redis.call('SET', KEYS[4], ARGV[5])
local seq = redis.call('HINCRBY', KEYS[3], 'seq', 1)
redis.call('ZADD', KEYS[2], seq, ARGV[2])
redis.call('SADD', KEYS[6], ARGV[8])
queue_op(KEYS[5], 'embed_document', ARGV[7] .. version)
local v = redis.call('HINCRBY', KEYS[3], 'version', 1)
redis.call('SPUBLISH', ARGV[1], v)
return {v, version, 0, ready, chunks, created}
