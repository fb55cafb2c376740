-- originend.lua: end, in this region, the current life of a remote origin's
-- sequence in one room, because that origin lost its data (its Redis came
-- back empty) and the events it had not shipped here are gone for good.
--
-- The bridge runs it on every room when it finds the origin's outbox started
-- over (docs/federation.md, "The origin lost its data"). It keeps the
-- origin's entry in the room's state with an empty epoch and position 0,
-- drops the origin's gap marker (it numbered the old life), and publishes
-- "end <origin>" on the room's channel: gateways tell each subscriber that
-- had events of that origin (recovered:false, epoch_changed); "end <origin>
-- all", for a room that held no life of it (ARGV[7]), tells every one. A resume that
-- names the old epoch is answered epoch_changed from the state. The next
-- event of the origin, of its new epoch, is applied as any new epoch is.
--
--   KEYS[1] geolab:s:{room}  hash: q:<origin>, e:<origin>, g:<origin>
-- ARGV:
--   1 origin
--   2 channel   the room's channel
--   3 publish   "PUBLISH" or "SPUBLISH" (a cluster)
--   4 compare   "1": end the life only if the origin no longer holds all of
--               it, as 5 and 6 say; absent or anything else: end it
--   5 epoch     with 4: the epoch of the room's sequence the origin holds
--               now ("" when it holds none)
--   6 oseq      with 4: the origin's last oseq of it
--   7 unheld    "1": a room that holds no life of the origin here (none of
--               its events was ever applied, or its life was ended before)
--               is ended too, and "end <origin> all" tells every subscriber:
--               the origin may have acked events in it that it never shipped
--               (a room it published into only after the last of its events
--               that reached this region); absent or anything else: left
-- Returns 1 when the room's life of the origin was ended (with unheld, also
-- a room that held none), 0 when there was nothing to end (never had one or
-- ended already, without unheld; or, with compare, the origin still holds
-- everything of it applied here: its outbox lost entries of other rooms
-- only).

local origin = ARGV[1]
local q = redis.call('HGET', KEYS[1], 'q:' .. origin)
local e = redis.call('HGET', KEYS[1], 'e:' .. origin)
local pubcmd = 'PUBLISH'
if ARGV[3] == 'SPUBLISH' then
  pubcmd = 'SPUBLISH'
end
local held = q and e and e ~= ''
if not held and ARGV[7] ~= '1' then
  return 0
end
if held and ARGV[4] == '1' and ARGV[5] == e and tonumber(q) <= (tonumber(ARGV[6]) or 0) then
  return 0
end
redis.call('HSET', KEYS[1], 'e:' .. origin, '', 'q:' .. origin, 0)
redis.call('HDEL', KEYS[1], 'g:' .. origin)
local notice = 'end ' .. origin .. '\n'
if not held then
  notice = 'end ' .. origin .. ' all\n'
end
redis.call(pubcmd, ARGV[2], notice)
return 1
