#!lua
-- Record the deliveries of one event, each once (the follow-up that asks may run twice).
-- KEYS: due, then each delivery's hash   ARGV: now retentionS, then per delivery: deliveryId endpointId eventId type body
-- Returns how many were new.
local new = 0
for i = 2, #KEYS do
  local a = 3 + (i - 2) * 5
  if redis.call('EXISTS', KEYS[i]) == 0 then
    redis.call('HSET', KEYS[i], 'deliveryId', ARGV[a], 'endpointId', ARGV[a + 1], 'eventId', ARGV[a + 2],
      'type', ARGV[a + 3], 'body', ARGV[a + 4], 'attempt', 1, 'takes', 0, 'status', 'pending', 'createdAt', ARGV[1])
    redis.call('EXPIRE', KEYS[i], ARGV[2])
    redis.call('ZADD', KEYS[1], ARGV[1], ARGV[a])
    new = new + 1
  end
end
return new
