-- An op of the embedding queue (keys.VECTOR_OPS): shared.indexing.ops.IndexOp, an array packed the
-- same way (read by the index process). Included, not run alone.
local function index_op(kind, ref) return cmsgpack.pack({kind, ref}) end
