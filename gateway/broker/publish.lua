-- publish.lua: the one atomic write path of a room.
--
-- Every event enters a region through this script, whether a client published
-- it here (mode "publish") or the federation bridge carries it in from its
-- origin region (mode "apply"). In one atomic step it assigns or checks the
-- (room, origin) sequence number, appends the event to the room's history
-- stream, records the publish's idempotency key, optionally appends it to the
-- region's federation outbox, and publishes it on the room's channel.
--
-- The idempotency record is written in every region the event reaches: by the
-- publish in its origin, and by the apply wherever the bridge carries it (the
-- outbox carries the client's message id). A retry that fails over to another
-- region is then answered there with the original event, once the event got
-- there first (docs/guarantees.md, G4).
--
-- Keys (all of one room share one hash tag, so one slot on a cluster: {room}
-- on one Redis; on a cluster the tag of the room's outbox partition, which
-- the outbox stream and counter carry too, e.g. geolab:s:{p3-12}{room} and
-- geolab:outbox:<region>:{p3-12}; see gateway/broker/layout.go):
--   KEYS[1] geolab:s:{room}   hash: q:<origin> = last oseq, e:<origin> = epoch,
--                             g:<origin> = highest oseq known missing (gap marker)
--   KEYS[2] geolab:h:{room}   stream: the room's history; fields o, q, e, f, and
--                             c (the client's message id) when known
--   KEYS[3] idempotency key   geolab:idem:{room}:<len>:<sender>:<client id>,
--                             <len> the sender's length in bytes (so the key is
--                             injective: a sender may hold ':'); apply: the key
--                             of the event's publish when ARGV[16] names its
--                             client id, else unused (the sequence check is the
--                             dedup of the apply itself)
--   KEYS[4] outbox stream     geolab:outbox:<region> (cluster: the room's partition of
--                             it), or "" when not federated
--   KEYS[5] outbox counter    its counter, <stream>:n (events ever appended), or ""
--
-- ARGV:
--   1 mode         "publish" | "apply"
--   2 channel      geolab:ch:{room} (cluster: geolab:ch:{<partition tag>}{room})
--   3 origin       region name
--   4 epoch        publish: candidate epoch for a new sequence; apply: the event's epoch
--   5 oseq         apply only: the event's oseq
--   6 head         frame JSON up to and including "oseq": (the oseq and epoch are spliced in)
--   7 tail         frame JSON from ,"sender": to the closing brace
--   8 event id     recorded in the idempotency value (publish: the fresh id;
--                  apply: the id in the frame, when ARGV[16] is set)
--   9 maxlen       history length bound (approximate trimming)
--  10 minid        history age bound as a stream id ("" = none)
--  11 idem ttl ms  dedup window
--  12 outbox maxlen
--  13 frame        apply only: the complete original frame, kept byte for byte
--  14 room         the room (recorded in the outbox entry)
--  15 force        apply only: "1" accepts an oseq past a gap the caller has
--                  recorded with a gap marker (the events before it are lost)
--  16 client id    the client's message id ("" when unknown: an outbox entry of
--                  an older gateway); kept in the history entry (c) and the
--                  outbox entry (c); apply: also recorded under KEYS[3], unless
--                  a record is there already (a retry that got here first)
--  17 publish      how the delivery is published: "PUBLISH" (one Redis; also
--                  when absent) or "SPUBLISH" (a cluster: sharded pub/sub, only
--                  the shard that owns the room's slot carries it)
--  18 outbox       "0": do not append to the outbox even though KEYS[4] names one
--                  (a cluster names the room's partition in KEYS[4] and KEYS[5]
--                  whether or not the room federates, for a key "" would hash to
--                  slot 0, not the room's); absent or anything else: append when
--                  KEYS[4] is not ""
--  19 touch dup    "1" makes a "dup" answer write again what it found: a publish
--                  retried, its idempotency record (same value, same TTL); an
--                  apply, the sequence number (same value). The gateway and the
--                  bridge run WAIT after the script (durability replicated),
--                  and WAIT only counts the writes of its own connection, so
--                  without a write the WAIT would not cover the first attempt's
--                  event, which may not have reached a replica yet
--  20 seen epoch   publish only: with 21, the highest position of this
--  21 seen oseq    region's sequence of the room that the caller knows was
--                  handed out ("" and 0: none). When the room holds that
--                  epoch with a last oseq below it, the events above were
--                  stored, seen, and lost since (a replica promoted before it
--                  had them): the sequence starts a new epoch (ARGV[4]) at 1
--                  instead of giving new events the lost ones' numbers
--
-- The idempotency value is "<event id> <oseq> <epoch> <stream id> <origin>"
-- (a record of an older gateway has no origin: it is this region's).
--
-- Returns {status, event id, oseq, epoch, stream id, origin}; status is "ok",
-- "dup" (publish retried: the original ack, whose origin may be another region;
-- apply: already applied) or, for apply, "gap" (oseq is ahead of what this
-- region has: the caller must not skip).

local mode = ARGV[1]
local origin = ARGV[3]
local qf = 'q:' .. origin
local ef = 'e:' .. origin

local oseq
local epoch
local frame

if mode == 'publish' then
  local prev = redis.call('GET', KEYS[3])
  if prev then
    local eid, q, e, sid, o = string.match(prev, '^(%S+) (%d+) (%S+) (%S+) ?(%S*)$')
    if o == nil or o == '' then
      o = origin
    end
    if ARGV[19] == '1' then
      redis.call('SET', KEYS[3], prev, 'KEEPTTL')
    end
    return {'dup', eid, tonumber(q), e, sid, o}
  end
  epoch = redis.call('HGET', KEYS[1], ef)
  if epoch and ARGV[20] == epoch and tonumber(redis.call('HGET', KEYS[1], qf) or '0') < (tonumber(ARGV[21]) or 0) then
    -- Behind what was seen: a new life of the sequence.
    redis.call('HSET', KEYS[1], qf, 0)
    epoch = nil
  end
  if not epoch then
    epoch = ARGV[4]
    redis.call('HSET', KEYS[1], ef, epoch)
  end
  oseq = redis.call('HINCRBY', KEYS[1], qf, 1)
  frame = ARGV[6] .. oseq .. ',"epoch":"' .. epoch .. '"' .. ARGV[7]
elseif mode == 'apply' then
  epoch = ARGV[4]
  oseq = tonumber(ARGV[5])
  local cur_epoch = redis.call('HGET', KEYS[1], ef)
  local cur = tonumber(redis.call('HGET', KEYS[1], qf) or '0')
  if cur_epoch == epoch then
    if oseq <= cur then
      if ARGV[19] == '1' then
        redis.call('HSET', KEYS[1], qf, cur)
      end
      return {'dup', '', cur, epoch, '', origin}
    end
    if oseq > cur + 1 and ARGV[15] ~= '1' then
      return {'gap', '', cur, epoch, '', origin}
    end
  else
    -- A new epoch of the origin: its sequence restarted (it lost history).
    redis.call('HSET', KEYS[1], ef, epoch)
  end
  redis.call('HSET', KEYS[1], qf, oseq)
  frame = ARGV[13]
else
  return redis.error_reply('publish.lua: unknown mode ' .. tostring(mode))
end

local cid = ARGV[16] or ''
local fields = {'o', origin, 'q', oseq, 'e', epoch, 'f', frame}
if cid ~= '' then
  fields[#fields + 1] = 'c'
  fields[#fields + 1] = cid
end
local sid = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[9], '*', unpack(fields))
if ARGV[10] ~= '' then
  redis.call('XTRIM', KEYS[2], 'MINID', '~', ARGV[10])
end

local eid = ARGV[8]
if mode == 'publish' then
  redis.call('SET', KEYS[3], eid .. ' ' .. oseq .. ' ' .. epoch .. ' ' .. sid .. ' ' .. origin, 'PX', ARGV[11])
  if KEYS[4] ~= '' and ARGV[18] ~= '0' then
    local n = redis.call('INCR', KEYS[5])
    redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[12], '*', 'r', ARGV[14], 'n', n, 'o', origin, 'q', oseq, 'e', epoch, 'f', frame, 'c', cid)
  end
else
  -- The event's id is in its frame; the ack a retry here gets names it
  -- through the frame's "id", which the caller passes as ARGV[8].
  if cid ~= '' then
    redis.call('SET', KEYS[3], eid .. ' ' .. oseq .. ' ' .. epoch .. ' ' .. sid .. ' ' .. origin, 'PX', ARGV[11], 'NX')
  end
end

local pubcmd = 'PUBLISH'
if ARGV[17] == 'SPUBLISH' then
  pubcmd = 'SPUBLISH'
end
redis.call(pubcmd, ARGV[2], sid .. ' ' .. origin .. ' ' .. oseq .. ' ' .. epoch .. '\n' .. frame)
return {'ok', eid, oseq, epoch, sid, origin}
