#!lua
-- Write a working memory and keep the revision. KEYS: memory, history
-- ARGV: text by op now expectedVersion (-1: any) channel historyCap
-- Returns the new version; CONFLICT when it is not at expectedVersion (another writer came first).
local version = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if ARGV[5] ~= '-1' and tonumber(ARGV[5]) ~= version then
  return redis.error_reply('CONFLICT the working memory changed meanwhile (now version ' .. version .. ')')
end
version = version + 1
redis.call('HSET', KEYS[1], 'text', ARGV[1], 'version', version, 'updatedAt', ARGV[4], 'updatedBy', ARGV[2])
redis.call('LPUSH', KEYS[2], cjson.encode({version = version, at = tonumber(ARGV[4]), by = ARGV[2], op = ARGV[3],
  text = ARGV[1]}))
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[7]) - 1)
redis.call('SPUBLISH', ARGV[6], version)
return version
