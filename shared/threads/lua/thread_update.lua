-- KEYS: thread, user_state   ARGV: threadChannel userChannel now field value [field value ...]
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('NOTFOUND thread') end
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('HSET', KEYS[1], 'updatedAt', ARGV[3])
local v = redis.call('HINCRBY', KEYS[1], 'version', 1)
local uv = redis.call('HINCRBY', KEYS[2], 'version', 1)
redis.call('SPUBLISH', ARGV[1], v)
redis.call('SPUBLISH', ARGV[2], uv)
return {v, uv}
