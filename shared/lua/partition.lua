-- A key of one partition's part of an app-wide set, as shared.keys.in_partition names it:
-- 'tl:{p0417}:' .. name (tests/shared/storage/test_partitions.py holds the two equal). Included, not run alone.
local function in_partition(p, name) return string.format('tl:{p%04d}:', tonumber(p)) .. name end
