#!lua
-- Add a member (or change a member's role) or remove one. KEYS: thread, outbox
-- ARGV: op (add|remove) caller member role now channel maxMembers  ->  {version, changed, followUps}
-- add: the owner only (caller '' is trusted code). remove: the owner, or the member themself.
-- Every list holding the thread hears of the change (its members are part of it).
-- A join takes a joinedAt larger than any before it in this thread (memberGen), so the follow-ups
-- that list and unlist it in the member's own list (user_threads_follow.lua) are told apart from
-- an earlier join's, whatever order they come in.
-- include: access.lua
local op, caller, member = ARGV[1], ARGV[2], ARGV[3]
local field = MEMBER .. member
local denied
if op == 'remove' and caller == member then denied = refused(KEYS[1], caller, 'reader')
else denied = refused(KEYS[1], caller, 'owner') end
if denied then return redis.error_reply(denied) end
if member == redis.call('HGET', KEYS[1], 'userId') then return redis.error_reply('CONFLICT the owner is not a member') end
local tid = redis.call('HGET', KEYS[1], 'threadId')
local old = redis.call('HGET', KEYS[1], field)
local follows = {}
if op == 'add' then
  if old and string.match(old, '^%a+') == ARGV[4] then
    return {tonumber(redis.call('HGET', KEYS[1], 'version')), 0, follows}
  end
  if old then
    redis.call('HSET', KEYS[1], field, ARGV[4] .. ' ' .. string.match(old, '%d+$'))
  else
    if redis.call('HINCRBY', KEYS[1], 'memberCount', 1) > tonumber(ARGV[7]) then
      redis.call('HINCRBY', KEYS[1], 'memberCount', -1)
      return redis.error_reply('CONFLICT a thread has at most ' .. ARGV[7] .. ' members')
    end
    local joined = math.max(tonumber(ARGV[5]), tonumber(redis.call('HGET', KEYS[1], 'memberGen') or '0') + 1)
    redis.call('HSET', KEYS[1], field, ARGV[4] .. ' ' .. string.format('%d', joined), 'memberGen', joined)
    follows[1] = cmsgpack.pack({'threads.user', 'add', member, tid, string.format('%d', joined)})
  end
else
  if not old then return {tonumber(redis.call('HGET', KEYS[1], 'version')), 0, follows} end
  redis.call('HDEL', KEYS[1], field)
  redis.call('HINCRBY', KEYS[1], 'memberCount', -1)
  follows[1] = cmsgpack.pack({'threads.user', 'remove', member, tid, string.match(old, '%d+$')})
end
local v = redis.call('HINCRBY', KEYS[1], 'version', 1)
for _, f in ipairs(list_touches(KEYS[1], v)) do follows[#follows + 1] = f end
for _, f in ipairs(follows) do redis.call('ZADD', KEYS[2], ARGV[5], f) end
redis.call('SPUBLISH', ARGV[6], v)
return {v, 1, follows}
