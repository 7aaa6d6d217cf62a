-- Storing and dropping a snippet with its indexes (the thread's by sequence, its document's by
-- lexical range: keys.snippet_documents) and its index op. Included, not run alone.
-- include: ../../indexing/lua/index_op.lua
local function snippet_doc_member(document, seq, id)
  return document .. '\31' .. string.format('%012d', seq) .. '\31' .. id
end

-- k: {thread, snippets, snippet_index, snippet_documents, vector_ops}; document '' for none
local function put_snippet(k, id, body, document, thread_id)
  redis.call('HSET', k[2], id, body)
  local seq = redis.call('HINCRBY', k[1], 'snippetSeq', 1)
  redis.call('ZADD', k[3], seq, id)
  if document ~= '' then redis.call('ZADD', k[4], 0, snippet_doc_member(document, seq, id)) end
  queue_op(k[5], 'embed_snippet', thread_id .. '/' .. id)
end

-- 1 when the snippet was there
local function drop_snippet(k, id)
  local old = redis.call('HGET', k[2], id)
  if not old then return 0 end
  local seq = redis.call('ZSCORE', k[3], id)
  local document = cjson.decode(old).document
  if type(document) == 'string' and seq then
    redis.call('ZREM', k[4], snippet_doc_member(document, tonumber(seq), id))
  end
  redis.call('HDEL', k[2], id)
  redis.call('ZREM', k[3], id)
  queue_op(k[5], 'forget_snippet', id)
  return 1
end
