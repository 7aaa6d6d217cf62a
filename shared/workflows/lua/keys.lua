-- The keys of workflow runs, in the formats of shared/keys.py (tests/shared/workflows/test_journal.py holds the two
-- to the same keys): the scripts name the keys of other runs (a child, a parent), so they build them.
-- Included, not run alone.
-- include: ../../lua/partition.lua
local WF_TIMERS = 'tl:wf:timers'
local WF_RUNS = 'tl:wf:runs'
local WF_OWNERS = 'tl:wf:owners'
local WF_ALL_CHANNEL = 'tl:chg:wf'
local WF_ALL_VERSION = 'tl:wf:v'
local WF_PARTS = {'run', 'steps', 'results', 'inputs', 'events'}
-- an entity's keys start with its partition's hash tag, its kind and its (escaped) id: keys._entity
local function wf_entity(kind, id)
  local p = tonumber(string.sub(redis.sha1hex(id), 1, 4), 16) % 1024
  return in_partition(p, kind .. ':' .. (string.gsub(id, '[%%:]', {['%'] = '%25', [':'] = '%3A'})))
end
local function wf_key(run, part) return wf_entity('wf', run) .. ':' .. part end
local function wf_channel(run) return wf_entity('wf', run) .. ':chg' end
local function wf_user(user) return wf_entity('u', user) .. ':wf' end
local function wf_user_channel(user) return wf_entity('u', user) .. ':chg:wf' end
local function wf_pool(name) return 'tl:wf:pool:' .. name end
local function wf_timer(run, id) return 's|' .. run .. '|' .. id end
local function wf_drive_timer(run) return 'd|' .. run end
