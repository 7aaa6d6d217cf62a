#!lua
-- Save a batch of messages, giving each its order and stepOrder.
-- Returns {version, id, order, stepOrder, ..., fileFollowUps}.
-- KEYS: thread, msgs, idx, idx_notool, vector_ops, then the file keys (shared.files.refs), idx_open, meta
-- (the files referenced were pinned just before: shared.files.refs)
-- ARGV: channel promptMessageId count caller (a writer of the thread; '' trusted code), then per message: kind explicitOrder messageId flags index files body metadata
--   flags: Message.index_flags (tool message; not successful)
--   index '1': queue the message for embedding (in this same step); files: the file ids it references
--   kind: "user" opens the next order at stepOrder 0; "step" takes the next stepOrder
--   of the current order (the prompt's, else the last opened); "explicit" the next
--   stepOrder of explicitOrder. body holds the placeholder "order":-1,"stepOrder":-1 and ends
--   '"metadata":null}'; metadata: its JSON ('' none), put there and in meta (metadata.lua).
-- include: ../../lua/score.lua
-- include: ../../indexing/lua/index_op.lua
-- include: ../../files/lua/refs.lua
-- include: metadata.lua
-- include: access.lua
local PLACEHOLDER = '"order":-1,"stepOrder":-1'
local denied = refused(KEYS[1], ARGV[4], 'writer')
if denied then return redis.error_reply(denied) end

local function max_step_at(order)
  local hit = redis.call('ZREVRANGEBYSCORE', KEYS[3], '(' .. string.format('%d', (order + 1) * SPAN),
    string.format('%d', order * SPAN), 'WITHSCORES', 'LIMIT', 0, 1)
  if #hit == 0 then return -1 end
  return tonumber(hit[2]) - order * SPAN
end

local fk = {KEYS[6], KEYS[1], KEYS[7]}
local count = tonumber(ARGV[3])
for i = 0, count - 1 do
  local id = ARGV[5 + i * 8 + 2]
  if redis.call('HEXISTS', KEYS[2], id) == 1 then
    return redis.error_reply('CONFLICT message ' .. id .. ' exists')
  end
end

local max_order = tonumber(redis.call('HGET', KEYS[1], 'maxOrder') or '0')
local cur, next_step
if ARGV[2] ~= '' then
  local score = redis.call('ZSCORE', KEYS[3], ARGV[2])
  if not score then return redis.error_reply('NOTFOUND prompt message ' .. ARGV[2]) end
  cur = math.floor(tonumber(score) / SPAN)
  next_step = max_step_at(cur) + 1
end

local out = {}
for i = 0, count - 1 do
  local base = 5 + i * 8
  local kind, id, flags, index, body = ARGV[base], ARGV[base + 2], ARGV[base + 3], ARGV[base + 4], ARGV[base + 6]
  local step
  if kind == 'user' then
    max_order = max_order + 1
    cur, step = max_order, 0
  elseif kind == 'explicit' then
    cur = tonumber(ARGV[base + 1])
    if cur > max_order then max_order = cur end
    step = max_step_at(cur) + 1
  else
    if cur == nil then
      if max_order == 0 then max_order = 1 end
      cur = max_order
      step = max_step_at(cur) + 1
    else
      step = next_step
    end
  end
  if step >= SPAN then return redis.error_reply('CONFLICT stepOrder overflow') end
  next_step = step + 1
  local s, e = string.find(body, PLACEHOLDER, 1, true)
  body = string.sub(body, 1, s - 1) .. '"order":' .. string.format('%d', cur) ..
    ',"stepOrder":' .. string.format('%d', step) .. string.sub(body, e + 1)
  local score = score_of(cur, step)
  if ARGV[base + 7] ~= '' then
    body = put_metadata(body, ARGV[base + 7])
    redis.call('HSET', KEYS[9], id, ARGV[base + 7])
  end
  redis.call('HSET', KEYS[2], id, body)
  redis.call('ZADD', KEYS[3], score, id)
  if string.sub(flags, 1, 1) == '0' then redis.call('ZADD', KEYS[4], score, id) end
  if string.sub(flags, 2, 2) == '1' then redis.call('ZADD', KEYS[8], score, id) end
  if index == '1' then queue_op(KEYS[5], 'embed_message', id) end
  files_set(fk, id, ARGV[base + 5])
  out[#out + 1] = id
  out[#out + 1] = cur
  out[#out + 1] = step
end
redis.call('HSET', KEYS[1], 'maxOrder', max_order)
local v = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('SPUBLISH', ARGV[1], v)
table.insert(out, 1, v)
out[#out + 1] = FOLLOWS
return out
