-- The keys of workflow runs, in the formats of shared/keys.py (tests/shared/workflows/test_journal.py holds the two
-- to the same keys): the scripts name the keys of other runs (a child, a parent), so they build them.
-- Included, not run alone.
local WF_TIMERS = 'tl:wf:timers'
local WF_RUNS = 'tl:wf:runs'
local WF_OWNERS = 'tl:wf:owners'
local WF_ALL_CHANNEL = 'tl:chg:wf'
local WF_ALL_VERSION = 'tl:wf:v'
local WF_PARTS = {'run', 'steps', 'results', 'inputs', 'events'}
local function wf_key(run, part) return 'tl:wf:{' .. run .. '}:' .. part end
local function wf_channel(run) return 'tl:chg:{wf:' .. run .. '}' end
local function wf_user(user) return 'tl:{u:' .. user .. '}:wf' end
local function wf_user_channel(user) return 'tl:chg:{u:' .. user .. '}:wf' end
local function wf_pool(name) return 'tl:wf:pool:' .. name end
local function wf_timer(run, id) return 's|' .. run .. '|' .. id end
local function wf_drive_timer(run) return 'd|' .. run end
