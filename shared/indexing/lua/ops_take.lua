#!lua flags=allow-cross-slot-keys
-- The index process takes up to ARGV[1] ops, moving each from its partition's list to its own list in
-- that partition (never lost: shared.indexing.ops). A walker of partitions: it names the keys of the
-- partitions it is given (on a cluster, the caller gives a node the partitions it serves).
-- ARGV: most, ops name, taken name, then partition numbers (or runs of them: partitions_from)
-- Returns {ops still waiting in these partitions, partition, op, partition, op, ...}
-- include: ../../lua/partition.lua
local most = tonumber(ARGV[1])
local out, waiting = {0}, 0
for _, p in ipairs(partitions_from(4)) do
  local from = in_partition(p, ARGV[2])
  local n = redis.call('LLEN', from)
  if n > 0 then
    local to = in_partition(p, ARGV[3])
    while most > 0 and n > 0 do
      out[#out + 1] = p
      out[#out + 1] = redis.call('LMOVE', from, to, 'LEFT', 'RIGHT')
      most, n = most - 1, n - 1
    end
    waiting = waiting + n
  end
end
out[1] = waiting
return out
