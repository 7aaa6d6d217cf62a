-- Reference counts of files, shared by the scripts that write messages (included, not run alone).
-- fk: the file keys of shared.files.refs.file_keys: {thread's message->files hash, FILES, FILE_REFS, FILES_IDLE}

-- an error naming the first of `files` (space-separated ids) that is not a file of `owner`, or nil
local function files_missing(fk, owner, files)
  for id in string.gmatch(files, '%S+') do
    local rec = redis.call('HGET', fk[2], id)
    if not rec or cjson.decode(rec).userId ~= owner then return 'NOTFOUND file ' .. id end
  end
  return nil
end

-- message `mid` now references `files`: counts of the files it dropped go down (a file no message
-- references any more is idle from now), counts of the ones it added go up
local function files_set(fk, mid, files)
  local old = redis.call('HGET', fk[1], mid) or ''
  if old == files then return end
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  for id in string.gmatch(old, '%S+') do
    if redis.call('HINCRBY', fk[3], id, -1) <= 0 then
      redis.call('HDEL', fk[3], id)
      if redis.call('HEXISTS', fk[2], id) == 1 then redis.call('ZADD', fk[4], now, id) end
    end
  end
  for id in string.gmatch(files, '%S+') do
    redis.call('HINCRBY', fk[3], id, 1)
    redis.call('ZREM', fk[4], id)
  end
  if files == '' then redis.call('HDEL', fk[1], mid) else redis.call('HSET', fk[1], mid, files) end
end
