#!lua flags=allow-cross-slot-keys
-- Ops an index process took go back to their partition's list: at the end (ARGV[4] = 'RIGHT': tried
-- again later) or in front (ARGV[4] = 'LEFT': a dead process's, which were first). A walker of
-- partitions, as ops_take.lua.
-- ARGV: ops name, taken name, where the taken list is read from ('LEFT'/'RIGHT'), where they go, then partition numbers (or runs)
-- Returns how many went back.
-- include: ../../lua/partition.lua
local moved = 0
for _, p in ipairs(partitions_from(5)) do
  local from, to = in_partition(p, ARGV[2]), in_partition(p, ARGV[1])
  while redis.call('LMOVE', from, to, ARGV[3], ARGV[4]) do moved = moved + 1 end
end
return moved
