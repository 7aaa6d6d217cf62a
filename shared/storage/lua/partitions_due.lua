#!lua flags=allow-cross-slot-keys,no-writes
-- Members of an app-wide sorted set kept per partition (shared.storage.partitions) scored at most
-- ARGV[2]: at most ARGV[3], each partition's lowest first, the partitions in the order given. A walker
-- of partitions: it names the keys of the partitions it is given (keys.in_partition), all of this node.
-- ARGV: name, maxScore, limit, then partition numbers
-- Returns {partition, member, partition, member, ...}
-- include: ../../lua/partition.lua
local name, upto, left = ARGV[1], ARGV[2], tonumber(ARGV[3])
local out = {}
for i = 4, #ARGV do
  if left <= 0 then break end
  local found = redis.call('ZRANGEBYSCORE', in_partition(ARGV[i], name),
    '-inf', upto, 'LIMIT', 0, left)
  for _, member in ipairs(found) do
    out[#out + 1] = ARGV[i]
    out[#out + 1] = member
  end
  left = left - #found
end
return out
