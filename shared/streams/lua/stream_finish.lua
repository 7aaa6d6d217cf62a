#!lua
-- End a stream and store its final message(s) in one step: subscribers see both together.
-- KEYS: thread, msgs, idx, idx_notool, stream, active, ended, vector_ops, then the file keys (shared.files.refs), idx_open, meta,
--   idx_hidden, hidden_flags, turns (shared/threads/lua/branches.lua: a reply to a turn left by an edit stays off the path)
-- ARGV: channel status member now event, then per message: messageId flags index files body (flags: Message.index_flags;
--   the body ends '"metadata":null}': the message keeps its metadata, shared/threads/lua/metadata.lua)
-- The files referenced were pinned just before (shared.files.refs); one that was not there is left out.
-- event: the webhook event of this end (reply.finished, reply.failed) when an endpoint takes it, else '':
--   recorded as a follow-up in the thread's outbox (shared.webhooks.replies), so it is told once.
-- Returns {version, followUps}, or 0 when the stream was already finalized (by the worker or the reaper).
-- include: ../../indexing/lua/index_op.lua
-- include: ../../files/lua/refs.lua
-- include: ../../threads/lua/metadata.lua
-- include: ../../lua/score.lua
-- include: ../../threads/lua/branches.lua
if redis.call('HGET', KEYS[5], 'final') == '1' then return 0 end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local fk = {KEYS[9], KEYS[1], KEYS[10]}
local ix = {idx = KEYS[3], notool = KEYS[4], open = KEYS[11], hidden = KEYS[13], flags = KEYS[14], turns = KEYS[15]}
for i = 6, #ARGV, 5 do
  local id = ARGV[i]
  if redis.call('HEXISTS', KEYS[2], id) == 1 then
    redis.call('HSET', KEYS[2], id, with_metadata(KEYS[12], id, ARGV[i + 4]))
    files_set(fk, id, ARGV[i + 3])
    if ARGV[i + 2] == '1' then queue_op(KEYS[8], 'embed_message', id) end
    reindex(ix, id, ARGV[i + 1])
  end
end
local status = redis.call('HGET', KEYS[5], 'status')
if status == 'streaming' or ARGV[2] == 'aborted' then status = ARGV[2] end
redis.call('HSET', KEYS[5], 'status', status, 'final', '1', 'endedAt', ARGV[4])
redis.call('ZREM', KEYS[6], ARGV[3])
redis.call('ZADD', KEYS[7], ARGV[4], ARGV[3])
if ARGV[5] ~= '' then
  local entry = cmsgpack.pack({'webhook.reply', ARGV[5], ARGV[3], ARGV[4]})
  redis.call('ZADD', KEYS[10], ARGV[4], entry)
  FOLLOWS[#FOLLOWS + 1] = entry
end
local v = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('SPUBLISH', ARGV[1], v)
return {v, FOLLOWS}
