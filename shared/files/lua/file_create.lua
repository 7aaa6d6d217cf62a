#!lua
-- Keep a new file record (in the file's slot). Its content gains the record and the owner's list
-- gains the file by two follow-ups recorded here (in the content's and the owner's slots).
-- KEYS: file, idle, outbox   ARGV: fileId record hash userId createdAt now
-- Returns {takeFollowUp, listFollowUp}.
redis.call('HSET', KEYS[1], 'rec', ARGV[2], 'refs', 0)
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[1])
local take = cmsgpack.pack({'files.blob', 'take', ARGV[3], ARGV[1]})
local list = cmsgpack.pack({'files.user', 'add', ARGV[4], ARGV[1], ARGV[5]})
redis.call('ZADD', KEYS[3], ARGV[6], take)
redis.call('ZADD', KEYS[3], ARGV[6], list)
return {take, list}
