#!lua flags=no-writes
-- One consistent read of a page of messages, newest first.
-- KEYS: thread, msgs, index   ARGV: maxScore ('+inf' or '(<score>'), limit, minScore ('-inf': the whole thread)
-- include: page.lua
return page(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3])
