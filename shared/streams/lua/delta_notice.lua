-- The notice of a stream's new delta on its thread's delta channel: shared.streams.records.DeltaNotice,
-- an array packed the same way (read by the web processes). Included, not run alone.
local function delta_notice(sid, seq, parts) return cmsgpack.pack({sid, seq, parts}) end
