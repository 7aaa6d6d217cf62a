#!lua
-- The deleter deleted a claimed content's bytes: an upload of it may store them again.
-- KEYS: blob
redis.call('DEL', KEYS[1])
return 1
