-- snapshot.lua: a room's sequence state and history tip, read atomically.
--
-- Because publish.lua is atomic too, the tip id and the per-origin oseqs
-- describe the same instant: every event up to the tip is in the stream and
-- every oseq counted in KEYS[1] belongs to an event at or before the tip.
--
--   KEYS[1] geolab:s:{room}  (hash: q:<origin>, e:<origin>, g:<origin>)
--   KEYS[2] geolab:h:{room}  (stream)
-- Returns {tip stream id or "0-0", flat hash fields and values}.

local tip = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
local tipid = '0-0'
if #tip > 0 then
  tipid = tip[1][1]
end
return {tipid, redis.call('HGETALL', KEYS[1])}
