-- A message's metadata (the app's JSON) is stored twice: as the last field of its body, for every
-- read, and in the thread's metadata hash (keys.message_metadata), so that a new body written for
-- the message keeps it. Writers give bodies ending '"metadata":null}' (records.NO_METADATA);
-- with_metadata puts the stored metadata there. Included, not run alone.
local NO_METADATA = '"metadata":null}'
local function ends_without_metadata(body) return string.sub(body, -#NO_METADATA) == NO_METADATA end
-- a body ending NO_METADATA with ``meta`` (JSON) in place of its null
local function put_metadata(body, meta) return string.sub(body, 1, #body - 5) .. meta .. '}' end
local function with_metadata(meta_key, id, body)
  local meta = redis.call('HGET', meta_key, id)
  if not meta or not ends_without_metadata(body) then return body end
  return put_metadata(body, meta)
end
