#!lua
-- The user's list of runs hears of a run (a follow-up of its start, a place given, its end), in the
-- user's slot: the run is listed (again: idempotent) and the list's watchers are told.
-- KEYS: user_workflows, user_workflows_version   ARGV: run createdAt channel
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('SPUBLISH', ARGV[3], redis.call('INCR', KEYS[2]))
return 1
