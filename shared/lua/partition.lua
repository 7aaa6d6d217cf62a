-- A key of one partition's part of an app-wide set, as shared.keys.in_partition names it:
-- 'tl:{p0417}:' .. name (tests/shared/storage/test_partitions.py holds the two equal). Included, not run alone.
local function in_partition(p, name) return string.format('tl:{p%04d}:', tonumber(p)) .. name end
-- The partition numbers a walker script is given, ARGV[first] on: each a number, or a run 'a-b' of them
-- (both ends in; shared.storage.partitions.runs writes them so), as strings.
local function partitions_from(first)
  local out = {}
  for i = first, #ARGV do
    local a, b = string.match(ARGV[i], '^(%d+)%-(%d+)$')
    if a then
      for p = tonumber(a), tonumber(b) do out[#out + 1] = tostring(p) end
    else
      out[#out + 1] = ARGV[i]
    end
  end
  return out
end
