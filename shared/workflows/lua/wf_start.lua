#!lua
-- Start a workflow run: ARGV run, name, user, args (JSON), now, max running of its kind (0: any),
-- onComplete input (JSON or ''), limited ('1': started by a client: its agent steps count in the
-- user's rate limits; child runs inherit it), parent run and step ('' for none).
-- A run that exists already is left as it is (a start with an idempotency key names its run by the
-- key; the start of a child run is a follow-up that may run twice).
-- Returns {{run, 1 if started now}, follow-ups}.
-- include: run.lua
local run = ARGV[1]
local created = wf_start_run(run, ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[9], ARGV[10],
                             ARGV[7], ARGV[8])
return wf_reply({run, created})
