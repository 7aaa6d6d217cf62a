#!lua
-- Save a batch of messages, giving each its order and stepOrder.
-- Returns {version, id, order, stepOrder, ..., fileFollowUps}.
-- KEYS: thread, msgs, idx, idx_notool, vector_ops, then the file keys (shared.files.refs), idx_open, meta,
--   idx_hidden, hidden_flags, turns (branches.lua)
-- (the files referenced were pinned just before: shared.files.refs)
-- ARGV: channel promptMessageId count caller (a writer of the thread; '' trusted code) edits, then per message: kind explicitOrder messageId flags index files body metadata
--   edits: '' or the id of a user message on the active path the first (a user) message is a new
--   version of: it follows that message's parent turn, and the path after that turn is hidden.
--   flags: Message.index_flags (tool message; not successful)
--   index '1': queue the message for embedding (in this same step); files: the file ids it references
--   kind: "user" opens the next order at stepOrder 0; "step" takes the next stepOrder
--   of the current order (the prompt's, else the last opened); "explicit" the next
--   stepOrder of explicitOrder (each in the hidden index when its turn is off the path). body holds the placeholder "order":-1,"stepOrder":-1 and ends
--   '"metadata":null}'; metadata: its JSON ('' none), put there and in meta (metadata.lua).
-- include: ../../lua/score.lua
-- include: ../../indexing/lua/index_op.lua
-- include: ../../files/lua/refs.lua
-- include: metadata.lua
-- include: access.lua
-- include: branches.lua
local PLACEHOLDER = '"order":-1,"stepOrder":-1'
local denied = refused(KEYS[1], ARGV[4], 'writer')
if denied then return redis.error_reply(denied) end

local ix = {idx = KEYS[3], notool = KEYS[4], open = KEYS[8], hidden = KEYS[10], flags = KEYS[11], turns = KEYS[12]}
local function max_step_at(order)
  local top = -1
  for _, index in ipairs({KEYS[3], KEYS[10]}) do
    local hit = redis.call('ZREVRANGEBYSCORE', index, '(' .. score_of(order + 1, 0), score_of(order, 0), 'WITHSCORES', 'LIMIT', 0, 1)
    if #hit > 0 then top = math.max(top, tonumber(hit[2]) - order * SPAN) end
  end
  return top
end

local fk = {KEYS[6], KEYS[1], KEYS[7]}
local count = tonumber(ARGV[3])
for i = 0, count - 1 do
  local id = ARGV[6 + i * 8 + 2]
  if redis.call('HEXISTS', KEYS[2], id) == 1 then
    return redis.error_reply('CONFLICT message ' .. id .. ' exists')
  end
end

local max_order = tonumber(redis.call('HGET', KEYS[1], 'maxOrder') or '0')
local leaf = redis.call('HGET', KEYS[12], 'leaf')
leaf = leaf and tonumber(leaf)
local branch_from
if ARGV[5] ~= '' then
  local s = redis.call('ZSCORE', KEYS[3], ARGV[5])
  if not s then
    if redis.call('HEXISTS', KEYS[2], ARGV[5]) == 1 then
      return redis.error_reply('CONFLICT message ' .. ARGV[5] .. ' is not on the active branch: switch to it first')
    end
    return redis.error_reply('NOTFOUND message ' .. ARGV[5])
  end
  branch_from = parent_of(ix, math.floor(tonumber(s) / SPAN))
end
local cur, next_step, hidden
if ARGV[2] ~= '' then
  local score = redis.call('ZSCORE', KEYS[3], ARGV[2])
  hidden = false
  if not score then  -- a reply to a prompt whose turn was left by an edit or a switch meanwhile
    score = redis.call('ZSCORE', KEYS[10], ARGV[2])
    hidden = true
  end
  if not score then return redis.error_reply('NOTFOUND prompt message ' .. ARGV[2]) end
  cur = math.floor(tonumber(score) / SPAN)
  next_step = max_step_at(cur) + 1
end

local out = {}
for i = 0, count - 1 do
  local base = 6 + i * 8
  local kind, id, flags, index, body = ARGV[base], ARGV[base + 2], ARGV[base + 3], ARGV[base + 4], ARGV[base + 6]
  local step
  if kind == 'user' then
    max_order = max_order + 1
    cur, step, hidden = max_order, 0, false
    local parent = leaf
    if branch_from then
      hide_after(ix, branch_from)
      parent, branch_from = branch_from, nil
    end
    if parent then
      link_turn(ix, cur, parent)
      leaf = cur
    end
  elseif kind == 'explicit' then
    cur = tonumber(ARGV[base + 1])
    if cur > max_order then max_order = cur end
    hidden = turn_hidden(ix, cur)
    step = max_step_at(cur) + 1
  else
    if cur == nil then
      if max_order == 0 then max_order = 1 end
      cur, hidden = leaf or max_order, false
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
  if hidden then index_hidden(ix, id, score, flags) else index_shown(ix, id, score, flags) end
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
