#!lua
-- Append one delta and publish its DeltaNotice (shared.streams.store).
-- KEYS: stream, text, log   ARGV: deltaChannel streamId partsJson textPiece closing after
-- Returns {seq, status}; seq 0 when the stream no longer streams (aborted: stop generating).
-- after (the seq its writer last wrote; '' for no check): a delta already written past it is this
-- same delta sent again (its first answer was lost): its seq is returned, nothing written twice.
-- closing '1': the aborted generation's last delta, what it received before it stopped, taken
-- so that the deltas joined stay the text it stores (never once the stream's end is stored).
-- include: delta_notice.lua
local status = redis.call('HGET', KEYS[1], 'status')
if ARGV[6] ~= nil and ARGV[6] ~= '' and tonumber(redis.call('HGET', KEYS[1], 'seq') or '0') > tonumber(ARGV[6]) then
  return {tonumber(ARGV[6]) + 1, status or 'missing'}
end
local closing = status == 'aborted' and ARGV[5] == '1' and redis.call('HGET', KEYS[1], 'final') ~= '1'
if status ~= 'streaming' and not closing then return {0, status or 'missing'} end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('XADD', KEYS[3], '0-' .. seq, 'p', ARGV[3])
if ARGV[4] ~= '' then redis.call('APPEND', KEYS[2], ARGV[4]) end
redis.call('SPUBLISH', ARGV[1], delta_notice(ARGV[2], seq, ARGV[3]))
return {seq, status}
