-- session.lua: which region owns a session, with epoch fencing (G11), and
-- which token subject the session belongs to.
--
-- A session (the id a client names when it connects) is owned by one region
-- at a time. The record (region, epoch, sub) lives in every region's Redis
-- for the session TTL after it was last claimed or applied there; a region
-- that takes a session over bumps the epoch and, when the region federates,
-- appends the new record to its outbox, and the bridges carry it to the
-- other regions. When records meet, the higher epoch wins (ties: the smaller
-- region name), so after a partition heals every region agrees, and a
-- region that learns another region owns a session tells its gateways on
-- the geolab:sessions channel to close their connections of it.
--
-- A session is bound to the token subject (sub) of its first claim: a claim
-- by another subject is refused ("forbidden") and changes nothing. A record
-- without a sub (written before sessions were bound) is bound by its next
-- claim.
--
-- Epochs: a take of a session this region has a record of is that record's
-- epoch + 1 (a counter: no clock decides an ordinary takeover). A take of a
-- session this region has no record of (new, or forgotten when its TTL ran
-- out here while another region kept it) starts at the claim's time in
-- milliseconds, so that it beats a record another region still holds from
-- before: a counter restarting at 1 could lose to it and leave two owners.
--
--   KEYS[1] geolab:session:{<id>}   hash: region, epoch, sub (on a cluster
--                                   geolab:session:{<partition tag>}{<id>}, and
--                                   KEYS[2] and KEYS[3] that partition's outbox)
--   KEYS[2] outbox stream           geolab:outbox:<this region>, or "" (claim of a
--                                   region that does not federate; apply)
--   KEYS[3] outbox counter          geolab:outbox:<this region>:n, or ""
-- ARGV:
--   1 mode    "claim" (a client connected here) | "apply" (a bridge carries a remote record)
--   2 id      the session id
--   3 region  claim: this region; apply: the record's region
--   4 epoch   claim: now in milliseconds; apply: the record's epoch
--   5 this    apply: the bridge's own region
--   6 outbox maxlen
--   7 sub     claim: the claiming token's subject; apply: the record's ("" if none)
--   8 ttl ms  how long the record lives after this claim or apply (0: no expiry)
--   9 outbox  "0": do not append to the outbox even though KEYS[2] names one (a
--             cluster always names the session's partition, never ""); absent or
--             anything else: append when KEYS[2] is not ""
-- Returns {status, region, epoch}: claim "kept" | "taken" | "forbidden";
-- apply "won" | "lost".

local cur_region = redis.call('HGET', KEYS[1], 'region')
local cur_epoch = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0')
local cur_sub = redis.call('HGET', KEYS[1], 'sub')
local ttl = tonumber(ARGV[8])

local function expire()
  if ttl > 0 then
    redis.call('PEXPIRE', KEYS[1], ttl)
  end
end

if ARGV[1] == 'claim' then
  if cur_sub and cur_sub ~= ARGV[7] then
    return {'forbidden', cur_region or '', cur_epoch}
  end
  if cur_region == ARGV[3] then
    if not cur_sub then
      redis.call('HSET', KEYS[1], 'sub', ARGV[7])
    end
    expire()
    return {'kept', cur_region, cur_epoch}
  end
  local epoch = cur_epoch + 1
  if cur_epoch == 0 then
    epoch = math.max(tonumber(ARGV[4]), 1)
  end
  -- Written as an integer: an epoch of milliseconds is past what Redis
  -- writes a Lua number as without an exponent.
  redis.call('HSET', KEYS[1], 'region', ARGV[3], 'epoch', string.format('%.0f', epoch), 'sub', ARGV[7])
  expire()
  if KEYS[2] ~= '' and ARGV[9] ~= '0' then
    local n = redis.call('INCR', KEYS[3])
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 't', 's', 'n', n,
      's', ARGV[2], 'g', ARGV[3], 'p', string.format('%.0f', epoch), 'o', ARGV[3], 'u', ARGV[7])
  end
  return {'taken', ARGV[3], epoch}
elseif ARGV[1] == 'apply' then
  local epoch = tonumber(ARGV[4])
  local wins = epoch > cur_epoch or (epoch == cur_epoch and cur_region ~= false and ARGV[3] < cur_region)
  if not wins then
    return {'lost', cur_region or '', cur_epoch}
  end
  redis.call('HSET', KEYS[1], 'region', ARGV[3], 'epoch', ARGV[4])
  if ARGV[7] ~= '' then
    redis.call('HSET', KEYS[1], 'sub', ARGV[7])
  end
  expire()
  -- Whoever here still serves the session is stale now, whether or not this
  -- region's record said it owned it (that record may have expired while a
  -- connection stayed open).
  if ARGV[3] ~= ARGV[5] then
    redis.call('PUBLISH', 'geolab:sessions', 'taken ' .. ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. ARGV[4])
  end
  return {'won', ARGV[3], epoch}
end
return redis.error_reply('session.lua: unknown mode ' .. tostring(ARGV[1]))
