-- The tree of a thread's turns, read (branches.lua says what it is and moves messages by it).
-- Included, not run alone (score.lua before it). ix: {idx=, hidden=, turns=}

local function parent_of(ix, order)
  local p = redis.call('HGET', ix.turns, 'p:' .. order)
  if p then return tonumber(p) end
  return order - 1
end

-- the children of a turn (its implicit next one when that one has no parent of its own)
local function children_of(ix, order, max_order)
  local out = {}
  local nxt = order + 1
  if nxt <= max_order and redis.call('HEXISTS', ix.turns, 'p:' .. nxt) == 0 then out[#out + 1] = nxt end
  local listed = redis.call('HGET', ix.turns, 'c:' .. order)
  if listed then
    for c in string.gmatch(listed, '%d+') do out[#out + 1] = tonumber(c) end
  end
  return out
end

-- the first message id of a turn in ``index`` (nil when it has none there)
local function first_in(index, order)
  local hit = redis.call('ZRANGEBYSCORE', index, score_of(order, 0), '(' .. score_of(order + 1, 0), 'LIMIT', 0, 1)
  return hit[1]
end

