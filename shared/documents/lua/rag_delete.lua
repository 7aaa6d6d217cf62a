#!lua
-- Delete a document; its vectors and chunks go through the index queue.
-- KEYS: docs, idx, state, content, vector_ops, namespaces   ARGV: channel key opPrefix(namespace\31key\31) namespace
-- Returns {namespace version, deleted 0|1}
-- include: ../../indexing/lua/index_op.lua
local cur = redis.call('HGET', KEYS[1], ARGV[2])
if not cur then return {tonumber(redis.call('HGET', KEYS[3], 'version') or '0'), 0} end
redis.call('HDEL', KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[2])
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[6], ARGV[4]) end
redis.call('DEL', KEYS[4])
queue_op(KEYS[5], 'forget_document', ARGV[3] .. cjson.decode(cur).version)
local v = redis.call('HINCRBY', KEYS[3], 'version', 1)
redis.call('SPUBLISH', ARGV[1], v)
return {v, 1}
