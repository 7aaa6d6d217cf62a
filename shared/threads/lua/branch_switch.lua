#!lua
-- Make turn ``order`` (a version of an edited message, or any turn off the active path) part of
-- the path, down to the newest turn under it; the path's turns that are not on the new one are
-- hidden (branches.lua). Returns {version, leaf}; the version is unchanged when it was on the path.
-- KEYS: thread, msgs, idx, idx_notool, vector_ops, then the file keys (shared.files.refs), idx_open, meta,
--   idx_hidden, hidden_flags, turns   (those of every message script: MessageStore._thread_keys)
-- ARGV: channel caller (a writer of the thread; '' trusted code) order
-- include: ../../lua/score.lua
-- include: access.lua
-- include: branches.lua
local denied = refused(KEYS[1], ARGV[2], 'writer')
if denied then return redis.error_reply(denied) end
local ix = {idx = KEYS[3], notool = KEYS[4], open = KEYS[8], hidden = KEYS[10], flags = KEYS[11], turns = KEYS[12]}
local order = tonumber(ARGV[3])
local max_order = tonumber(redis.call('HGET', KEYS[1], 'maxOrder') or '0')
local shown = order >= 1 and order <= max_order and first_in(ix.idx, order) ~= nil
if not shown and (order < 1 or order > max_order or first_in(ix.hidden, order) == nil) then
  return redis.error_reply('NOTFOUND turn ' .. ARGV[3])
end
if shown then
  return {tonumber(redis.call('HGET', KEYS[1], 'version')), tonumber(redis.call('HGET', ix.turns, 'leaf') or max_order)}
end
-- the newest turn under it: its subtree's largest order
local leaf, todo = order, {order}
while #todo > 0 do
  local at = table.remove(todo)
  if at > leaf then leaf = at end
  for _, c in ipairs(children_of(ix, at, max_order)) do todo[#todo + 1] = c end
end
-- up from there to the first turn already on the path (the root, 0, at the latest)
local up, at = {}, leaf
while at > 0 and first_in(ix.idx, at) == nil do
  up[#up + 1] = at
  at = parent_of(ix, at)
end
hide_after(ix, at)
for _, o in ipairs(up) do show_turn(ix, o) end
redis.call('HSET', ix.turns, 'leaf', leaf)
local v = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('SPUBLISH', ARGV[1], v)
return {v, leaf}
