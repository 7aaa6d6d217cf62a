-- An op of the embedding queue (keys.vector_ops): shared.indexing.ops.IndexOp, an array packed the
-- same way (read by the index process). Included, not run alone.
local function index_op(kind, ref) return cmsgpack.pack({kind, ref}) end

-- queue an op on the ops list ``key`` of a partition and wake the index process, once per script
-- run and list (its channel is the list's name and ':wake', keys.vector_ops_wake)
local __woken = {}
local function queue_op(key, kind, ref)
  redis.call('RPUSH', key, index_op(kind, ref))
  if not __woken[key] then
    redis.call('SPUBLISH', key .. ':wake', '1')
    __woken[key] = true
  end
end
