#!lua
-- Record the outcome of one attempt of a delivery; only the latest take's counts (a job of an older take,
-- whose lease ran out, is stale).
-- KEYS: delivery, due, log   ARGV: deliveryId take outcome nextAt now logEntry logCap attempt
-- outcome: delivered | retry (due again at nextAt) | failed | dropped (its endpoint is gone; not logged)
-- Returns 1, or 0 when the attempt was stale or recorded already.
local found = redis.call('HMGET', KEYS[1], 'status', 'takes', 'attempt')
if found[1] ~= 'pending' or found[2] ~= ARGV[2] or found[3] ~= ARGV[8] then return 0 end
if ARGV[6] ~= '' then
  redis.call('LPUSH', KEYS[3], ARGV[6])
  redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[7]) - 1)
end
if ARGV[3] == 'retry' then
  redis.call('HINCRBY', KEYS[1], 'attempt', 1)
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
else
  redis.call('HSET', KEYS[1], 'status', ARGV[3], 'endedAt', ARGV[5])
  redis.call('HDEL', KEYS[1], 'body')  -- (a reply's text has no business staying after its delivery)
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return 1
