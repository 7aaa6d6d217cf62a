#!lua flags=no-writes
-- The thread's streams with their text as of their seq, read in one step.
-- KEYS: thread_streams   ARGV: stream key prefix, text key suffix (shared.keys.stream_key_parts)
-- include: streams_of.lua
return streams_of(KEYS[1], ARGV[1], ARGV[2])
