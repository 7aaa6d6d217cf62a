-- Add or replace a document by key; identical content (same hash) of a document that did not fail is skipped.
-- KEYS: docs, idx, state, content, vector_ops, namespaces
-- ARGV: channel key hash body(with "version":-1) content now opPrefix(namespace\31key\31) namespace
-- Returns {namespace version, document version, skipped 0|1}
local old = redis.call('HGET', KEYS[1], ARGV[2])
local version = 1
if old then
  local doc = cjson.decode(old)
  if doc.hash == ARGV[3] and doc.status ~= 'failed' then
    return {tonumber(redis.call('HGET', KEYS[3], 'version') or '0'), doc.version, 1}
  end
  version = doc.version + 1
end
local s, e = string.find(ARGV[4], '"version":-1', 1, true)
local body = string.sub(ARGV[4], 1, s - 1) .. '"version":' .. version .. string.sub(ARGV[4], e + 1)
redis.call('HSET', KEYS[1], ARGV[2], body)
redis.call('SET', KEYS[4], ARGV[5])
local seq = redis.call('HINCRBY', KEYS[3], 'seq', 1)
redis.call('ZADD', KEYS[2], seq, ARGV[2])
redis.call('SADD', KEYS[6], ARGV[8])
redis.call('RPUSH', KEYS[5], index_op('embed_document', ARGV[7] .. version))
local v = redis.call('HINCRBY', KEYS[3], 'version', 1)
redis.call('PUBLISH', ARGV[1], v)
return {v, version, 0}
