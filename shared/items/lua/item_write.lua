#!lua
-- Put (body given) or delete (body '') one item of a namespace's store (shared.items.store).
-- KEYS: items, keys, state, vector_ops, namespaces (the part of keys.ITEM_NAMESPACES in its slot)
-- ARGV: channel key body expectedVersion(-1: any, 0: absent) maxBytes opRef index(1|0) now namespace
--   body starts with "version":-1,"createdAt":-1, filled in here from the current item.
-- Returns {namespace version, changed 0|1, the item's version (0: absent), its createdAt}; CONFLICT when the item is
-- not at expectedVersion, TOOLARGE when the namespace's items would pass maxBytes.
-- include: ../../indexing/lua/index_op.lua
local old = redis.call('HGET', KEYS[1], ARGV[2])
local version, created, size, indexed = 0, tonumber(ARGV[8]), 0, false
if old then
  local item = cjson.decode(old)
  version, created, size, indexed = item.version, item.createdAt, #old, item.index ~= false
end
local expected = tonumber(ARGV[4])
if expected >= 0 and expected ~= version then
  return redis.error_reply('CONFLICT the item is at version ' .. version .. ', not ' .. expected)
end
local total = tonumber(redis.call('HGET', KEYS[3], 'bytes') or '0') - size
if ARGV[3] == '' then
  if not old then return {tonumber(redis.call('HGET', KEYS[3], 'version') or '0'), 0, 0, 0} end
  redis.call('HDEL', KEYS[1], ARGV[2])
  redis.call('ZREM', KEYS[2], ARGV[2])
  if indexed then queue_op(KEYS[4], 'forget_item', ARGV[6]) end
  if redis.call('ZCARD', KEYS[2]) == 0 then redis.call('SREM', KEYS[5], ARGV[9]) end
  version = 0
else
  local body = string.gsub(ARGV[3], '^{"version":%-1,"createdAt":%-1,',
    '{"version":' .. string.format('%d', version + 1) .. ',"createdAt":' .. string.format('%d', created) .. ',', 1)
  total = total + #body
  if total > tonumber(ARGV[5]) then
    return redis.error_reply('TOOLARGE the namespace holds ' .. ARGV[5] .. ' bytes of items at most')
  end
  redis.call('HSET', KEYS[1], ARGV[2], body)
  redis.call('ZADD', KEYS[2], 0, ARGV[2])
  redis.call('SADD', KEYS[5], ARGV[9])
  version = version + 1
  if ARGV[7] == '1' then queue_op(KEYS[4], 'embed_item', ARGV[6])
  elseif indexed then queue_op(KEYS[4], 'forget_item', ARGV[6]) end
end
redis.call('HSET', KEYS[3], 'bytes', total)
local v = redis.call('HINCRBY', KEYS[3], 'version', 1)
redis.call('SPUBLISH', ARGV[1], v)
return {v, 1, version, created}
