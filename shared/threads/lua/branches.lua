-- Edits and branches: a thread's turns (orders) form a tree, and its indexes hold one path of it.
-- A turn's parent is the turn it follows: order - 1, unless its 'p:<order>' field of the turns
-- hash says otherwise (a new version of an edited message, or a send after a switch to an older
-- branch); 'c:<order>' lists those children of a turn, space-separated. The turns of the active
-- path (root to the turn 'leaf') are in the indexes (idx, idx_notool, idx_open), every other one's
-- messages in the hidden index (same scores) with their index flags kept aside ('<tool><open>',
-- as Message.index_flags). A thread never edited has no turns hash: its path is all of it, and
-- nothing here costs it anything. Included, not run alone (score.lua before it).
-- include: turns.lua
-- ix: {idx=, notool=, open=, hidden=, flags=, turns=}

-- put a message in the path's indexes (flags: '<tool><open>')
local function index_shown(ix, id, s, flags)
  redis.call('ZADD', ix.idx, s, id)
  if string.sub(flags, 1, 1) == '0' then redis.call('ZADD', ix.notool, s, id) end
  if string.sub(flags, 2, 2) == '1' then redis.call('ZADD', ix.open, s, id) end
end

-- put a message in the hidden index, its flags kept aside
local function index_hidden(ix, id, s, flags)
  redis.call('ZADD', ix.hidden, s, id)
  redis.call('HSET', ix.flags, id, flags)
end

-- move every message of the path after turn ``order`` to the hidden index
local function hide_after(ix, order)
  local hits = redis.call('ZRANGEBYSCORE', ix.idx, score_of(order + 1, 0), '+inf', 'WITHSCORES')
  for i = 1, #hits, 2 do
    local id, s = hits[i], hits[i + 1]
    index_hidden(ix, id, s, (redis.call('ZSCORE', ix.notool, id) and '0' or '1') .. (redis.call('ZSCORE', ix.open, id) and '1' or '0'))
    redis.call('ZREM', ix.idx, id)
    redis.call('ZREM', ix.notool, id)
    redis.call('ZREM', ix.open, id)
  end
end

-- move the messages of turn ``order`` from the hidden index back to the path's indexes
local function show_turn(ix, order)
  local hits = redis.call('ZRANGEBYSCORE', ix.hidden, score_of(order, 0), '(' .. score_of(order + 1, 0), 'WITHSCORES')
  for i = 1, #hits, 2 do
    local id, s = hits[i], hits[i + 1]
    index_shown(ix, id, s, redis.call('HGET', ix.flags, id) or '00')
    redis.call('ZREM', ix.hidden, id)
    redis.call('HDEL', ix.flags, id)
  end
end

-- a new turn ``order`` that follows ``parent``: recorded when it is not the implicit order - 1
local function link_turn(ix, order, parent)
  if parent ~= order - 1 then
    redis.call('HSET', ix.turns, 'p:' .. order, parent)
    local listed = redis.call('HGET', ix.turns, 'c:' .. parent)
    redis.call('HSET', ix.turns, 'c:' .. parent, listed and (listed .. ' ' .. order) or tostring(order))
  end
  redis.call('HSET', ix.turns, 'leaf', order)
end

-- the index a message of turn ``order`` goes to: the hidden one when that turn is off the path
local function turn_hidden(ix, order)
  return first_in(ix.hidden, order) ~= nil and first_in(ix.idx, order) == nil
end

-- a rewritten message's index flags: in the path's indexes, or kept aside when it is hidden
local function reindex(ix, id, flags)
  local s = redis.call('ZSCORE', ix.idx, id)
  if not s then
    if redis.call('ZSCORE', ix.hidden, id) then redis.call('HSET', ix.flags, id, flags) end
    return
  end
  if string.sub(flags, 1, 1) == '1' then redis.call('ZREM', ix.notool, id) else redis.call('ZADD', ix.notool, s, id) end
  if string.sub(flags, 2, 2) == '1' then redis.call('ZADD', ix.open, s, id) else redis.call('ZREM', ix.open, id) end
end
