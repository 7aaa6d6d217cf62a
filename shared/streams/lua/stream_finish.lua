#!lua
-- End a stream and store its final message(s) in one step: subscribers see both together.
-- KEYS: thread, msgs, idx, idx_notool, stream, active, ended, vector_ops, then the file keys (shared.files.refs), idx_open, meta
-- ARGV: channel status member now, then per message: messageId flags index files body (flags: Message.index_flags;
--   the body ends '"metadata":null}': the message keeps its metadata, shared/threads/lua/metadata.lua)
-- The files referenced were pinned just before (shared.files.refs); one that was not there is left out.
-- Returns {version, fileFollowUps}, or 0 when the stream was already finalized (by the worker or the reaper).
-- include: ../../indexing/lua/index_op.lua
-- include: ../../files/lua/refs.lua
-- include: ../../threads/lua/metadata.lua
if redis.call('HGET', KEYS[5], 'final') == '1' then return 0 end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local fk = {KEYS[9], KEYS[1], KEYS[10]}
for i = 5, #ARGV, 5 do
  local id = ARGV[i]
  if redis.call('HEXISTS', KEYS[2], id) == 1 then
    redis.call('HSET', KEYS[2], id, with_metadata(KEYS[12], id, ARGV[i + 4]))
    files_set(fk, id, ARGV[i + 3])
    if ARGV[i + 2] == '1' then queue_op(KEYS[8], 'embed_message', id) end
    local score = redis.call('ZSCORE', KEYS[3], id)
    if string.sub(ARGV[i + 1], 1, 1) == '1' then redis.call('ZREM', KEYS[4], id) else redis.call('ZADD', KEYS[4], score, id) end
    if string.sub(ARGV[i + 1], 2, 2) == '1' then redis.call('ZADD', KEYS[11], score, id) else redis.call('ZREM', KEYS[11], id) end
  end
end
local status = redis.call('HGET', KEYS[5], 'status')
if status == 'streaming' or ARGV[2] == 'aborted' then status = ARGV[2] end
redis.call('HSET', KEYS[5], 'status', status, 'final', '1', 'endedAt', ARGV[4])
redis.call('ZREM', KEYS[6], ARGV[3])
redis.call('ZADD', KEYS[7], ARGV[4], ARGV[3])
local v = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('SPUBLISH', ARGV[1], v)
return {v, FOLLOWS}
