-- Who may do what in a thread. Its hash holds its owner ('userId') and its members, one field
-- each: 'member:<userId>' = '<role> <joinedAt>' (role writer or reader; joinedAt a ms time,
-- larger for each join in that thread: its members' lists tell a rejoin from the join before).
-- A user '' is trusted server code: the owner's rights in any thread. Included, not run alone.
local ROLE_RANK = {reader = 1, writer = 2, owner = 3}
local MEMBER = 'member:'
-- the caller's role in ``thread`` ('owner', 'writer', 'reader'), or nil when it is not theirs to see
local function thread_role(thread, user)
  local owner = redis.call('HGET', thread, 'userId')
  if not owner then return nil end
  if user == '' or user == owner then return 'owner' end
  local m = redis.call('HGET', thread, MEMBER .. user)
  if not m then return nil end
  return string.match(m, '^%a+')
end
-- nil when ``user`` may do what needs ``role``; else the refusal (NOTFOUND for one who is not in it)
local function refused(thread, user, role)
  local has = thread_role(thread, user)
  if not has then return 'NOTFOUND thread' end
  if ROLE_RANK[has] < ROLE_RANK[role] then return 'FORBIDDEN this needs a ' .. role .. ' of the thread' end
  return nil
end
-- {userId, joinedAt} of each member (the owner is not one)
local function thread_members(thread)
  local out = {}
  local raw = redis.call('HGETALL', thread)
  for i = 1, #raw, 2 do
    if string.sub(raw[i], 1, #MEMBER) == MEMBER then
      out[#out + 1] = {string.sub(raw[i], #MEMBER + 1), string.match(raw[i + 1], '%d+$')}
    end
  end
  return out
end
-- the follow-ups telling the owner's and each member's list that the thread changed (to version v)
local function list_touches(thread, v)
  local tid = redis.call('HGET', thread, 'threadId')
  local out = {cmsgpack.pack({'threads.user', 'touch', redis.call('HGET', thread, 'userId'), tid, tostring(v)})}
  for _, m in ipairs(thread_members(thread)) do
    out[#out + 1] = cmsgpack.pack({'threads.user', 'touch', m[1], tid, tostring(v)})
  end
  return out
end
