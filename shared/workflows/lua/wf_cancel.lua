-- Cancel a run (and its child runs): ARGV run, now, retention s, reason. 1 if it was still going.
-- include: run.lua
return wf_finish_run(ARGV[1], 'canceled', nil, cjson.encode({code = 'canceled', message = ARGV[4]}),
                     tonumber(ARGV[2]), tonumber(ARGV[3]))
