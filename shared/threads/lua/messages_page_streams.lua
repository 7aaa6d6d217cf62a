#!lua flags=no-writes
-- A page of messages and the thread's streams, read in one step (a stream and its final message are
-- never both missing).
-- KEYS: thread, msgs, index, thread_streams   ARGV: maxScore, limit, stream key prefix, text key suffix
-- include: page.lua
-- include: ../../streams/lua/streams_of.lua
local found = page(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2])
if found.err then return found end
return {found, streams_of(KEYS[4], ARGV[3], ARGV[4])}
