#!lua
-- Record the deliveries of one event, each once (the follow-up that asks may run twice), each in the
-- index of every user the event is about (so erasing a user reaches their deliveries not yet sent).
-- KEYS: due, then each delivery's hash, then each user's index
-- ARGV: now retentionS deliveries, then per delivery: deliveryId endpointId eventId type body
-- Returns how many were new.
local new = 0
local count = tonumber(ARGV[3])
for i = 2, count + 1 do
  local a = 4 + (i - 2) * 5
  if redis.call('EXISTS', KEYS[i]) == 0 then
    redis.call('HSET', KEYS[i], 'deliveryId', ARGV[a], 'endpointId', ARGV[a + 1], 'eventId', ARGV[a + 2],
      'type', ARGV[a + 3], 'body', ARGV[a + 4], 'attempt', 1, 'takes', 0, 'status', 'pending', 'createdAt', ARGV[1])
    redis.call('EXPIRE', KEYS[i], ARGV[2])
    redis.call('ZADD', KEYS[1], ARGV[1], ARGV[a])
    for u = count + 2, #KEYS do
      redis.call('SADD', KEYS[u], ARGV[a])
      redis.call('EXPIRE', KEYS[u], ARGV[2])
    end
    new = new + 1
  end
end
return new
