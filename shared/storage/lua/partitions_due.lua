#!lua flags=allow-cross-slot-keys,no-writes
-- Members of an app-wide sorted set kept per partition (shared.storage.partitions) scored at most
-- ARGV[2]: at most ARGV[3], each partition's lowest first, the partitions in the order given. A walker
-- of partitions: it names the keys of the partitions it is given (keys.in_partition), all of this node.
-- ARGV: name, maxScore, limit, then partition numbers (or runs of them: partitions_from)
-- Returns {partition, member, partition, member, ...}
-- include: ../../lua/partition.lua
local name, upto, left = ARGV[1], ARGV[2], tonumber(ARGV[3])
local out = {}
for _, p in ipairs(partitions_from(4)) do
  if left <= 0 then break end
  local found = redis.call('ZRANGEBYSCORE', in_partition(p, name),
    '-inf', upto, 'LIMIT', 0, left)
  for _, member in ipairs(found) do
    out[#out + 1] = p
    out[#out + 1] = member
  end
  left = left - #found
end
return out
