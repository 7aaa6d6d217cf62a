-- Ops an index process took go back to their partition's list: at the end (ARGV[4] = 'RIGHT': tried
-- again later) or in front (ARGV[4] = 'LEFT': a dead process's, which were first). A walker of
-- partitions, as ops_take.lua.
-- ARGV: ops name, taken name, where the taken list is read from ('LEFT'/'RIGHT'), where they go, then partition numbers
-- Returns how many went back.
local moved = 0
for i = 5, #ARGV do
  local tag = string.format('tl:{p%04d}:', tonumber(ARGV[i]))
  local from, to = tag .. ARGV[2], tag .. ARGV[1]
  while redis.call('LMOVE', from, to, ARGV[3], ARGV[4]) do moved = moved + 1 end
end
return moved
