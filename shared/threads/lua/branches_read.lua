#!lua flags=no-writes
-- The forks on a thread's active path: each turn with two or more children (versions of an edited
-- message, or a send after a switch), its children in order with the first message of each and
-- which one is on the path (branches.lua). A thread never edited has none and reads one key.
-- KEYS: thread, idx, idx_hidden, turns
-- Returns {version, {parent, {child, messageId, onPath (1|0)}...}...}; a child with no message left is not listed.
-- include: ../../lua/score.lua
-- include: turns.lua
local ix = {idx = KEYS[2], hidden = KEYS[3], turns = KEYS[4]}
local head = redis.call('HMGET', KEYS[1], 'version', 'maxOrder')
if not head[1] then return redis.error_reply('NOTFOUND thread') end
local max_order = tonumber(head[2] or '0')
local out = {}
local fields = redis.call('HKEYS', ix.turns)
local parents = {}
for _, f in ipairs(fields) do
  local p = string.match(f, '^c:(%d+)$')
  if p then parents[#parents + 1] = tonumber(p) end
end
table.sort(parents)
for _, p in ipairs(parents) do
  local kids, on_path = {}, false
  local all = children_of(ix, p, max_order)
  table.sort(all)
  for _, c in ipairs(all) do
    local id, shown = first_in(ix.idx, c), 1
    if id == nil then id, shown = first_in(ix.hidden, c), 0 end
    if id ~= nil then
      kids[#kids + 1] = {c, id, shown}
      if shown == 1 then on_path = true end
    end
  end
  if on_path and #kids > 1 then out[#out + 1] = {p, kids} end
end
return {tonumber(head[1]), out}
