#!lua
-- Drop a file record no message references and none is being saved with: idle since before the
-- cutoff (the vacuum), or any time (cutoff = now: a delete, an upload whose bytes could not be
-- stored). Its content lets it go and the owner's list drops it by two follow-ups recorded here.
-- KEYS: file, file_refs, idle, outbox   ARGV: fileId cutoff now
-- Returns {releaseFollowUp, listFollowUp} when dropped, 0 when kept.
local rec = redis.call('HGET', KEYS[1], 'rec')
if not rec then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return 0
end
if tonumber(redis.call('HGET', KEYS[1], 'refs') or '0') > 0 then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return 0
end
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  if string.sub(fields[i], 1, 4) == 'pin:' then  -- a message referencing it is being saved
    if tonumber(fields[i + 1]) > tonumber(ARGV[3]) then return 0 end
    redis.call('HDEL', KEYS[1], fields[i])
  end
end
local since = redis.call('ZSCORE', KEYS[3], ARGV[1])
if not since or tonumber(since) > tonumber(ARGV[2]) then return 0 end
local r = cjson.decode(rec)
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
local release = cmsgpack.pack({'files.blob', 'release', r.hash, ARGV[1]})
local list = cmsgpack.pack({'files.user', 'remove', r.userId, ARGV[1], '0'})
redis.call('ZADD', KEYS[4], ARGV[3], release)
redis.call('ZADD', KEYS[4], ARGV[3], list)
return {release, list}
