-- session.lua: which region owns a session, with epoch fencing (G11).
--
-- A session (the id a client names when it connects) is owned by one region
-- at a time. The record (region, epoch) lives in every region's Redis; a
-- region that takes a session over bumps the epoch and appends the new record
-- to its outbox, and the bridges carry it to the other regions. When records
-- meet, the higher epoch wins (ties: the smaller region name), so after a
-- partition heals every region agrees, and a region that lost a session it
-- owned tells its gateways on the geolab:sessions channel to close it.
--
--   KEYS[1] geolab:session:{<id>}   hash: region, epoch
--   KEYS[2] outbox stream           geolab:outbox:<this region> (claim only)
--   KEYS[3] outbox counter          geolab:outbox:<this region>:n (claim only)
-- ARGV:
--   1 mode    "claim" (a client connected here) | "apply" (a bridge carries a remote record)
--   2 id      the session id
--   3 region  claim: this region; apply: the record's region
--   4 epoch   apply: the record's epoch
--   5 this    apply: the bridge's own region
--   6 outbox maxlen
-- Returns {status, region, epoch}: claim "kept" | "taken"; apply "won" | "lost".

local cur_region = redis.call('HGET', KEYS[1], 'region')
local cur_epoch = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0')

if ARGV[1] == 'claim' then
  if cur_region == ARGV[3] then
    return {'kept', cur_region, cur_epoch}
  end
  local epoch = cur_epoch + 1
  redis.call('HSET', KEYS[1], 'region', ARGV[3], 'epoch', epoch)
  local n = redis.call('INCR', KEYS[3])
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 't', 's', 'n', n,
    's', ARGV[2], 'g', ARGV[3], 'p', epoch, 'o', ARGV[3])
  return {'taken', ARGV[3], epoch}
elseif ARGV[1] == 'apply' then
  local epoch = tonumber(ARGV[4])
  local wins = epoch > cur_epoch or (epoch == cur_epoch and cur_region ~= false and ARGV[3] < cur_region)
  if not wins then
    return {'lost', cur_region or '', cur_epoch}
  end
  redis.call('HSET', KEYS[1], 'region', ARGV[3], 'epoch', epoch)
  if cur_region == ARGV[5] and ARGV[3] ~= ARGV[5] then
    redis.call('PUBLISH', 'geolab:sessions', 'taken ' .. ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. epoch)
  end
  return {'won', ARGV[3], epoch}
end
return redis.error_reply('session.lua: unknown mode ' .. tostring(ARGV[1]))
