package federation

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/geolab/geolab/gateway/broker"
	"github.com/geolab/geolab/internal/backoff"
	"github.com/geolab/geolab/internal/faulty"
)

// checkpointKey holds, in this region's Redis, the id of the last event of
// origin's outbox applied here: of its one outbox stream, or, when the
// origin runs a Redis Cluster, of its partition part (broker.Layout).
func checkpointKey(origin string, part broker.OutboxPartition) string {
	return partKey("geolab:fed:ckpt:", origin, part)
}

// originLifeKey holds, in this region's Redis, the data life token of the
// origin's Redis (broker.LifeOf) under which the bridge last read outbox
// partition part: a bridge restarted after the origin lost its data still
// finds the token changed, even when it had applied nothing of it.
func originLifeKey(origin string, part broker.OutboxPartition) string {
	return partKey("geolab:fed:life:", origin, part)
}

// partKey is prefix+origin, and ":"+the partition's name when the origin
// runs a cluster.
func partKey(prefix, origin string, part broker.OutboxPartition) string {
	if part.Name == "" {
		return prefix + origin
	}
	return prefix + origin + ":" + part.Name
}

// clusterPoll is the longest pause between two reads of a clustered
// origin's outbox partitions when the last read found nothing: one
// XREAD BLOCK cannot wait on streams of several slots, so the partitions
// are read without blocking (one pipelined round trip per node) and polled.
const clusterPoll = 100 * time.Millisecond

// feed is the bridge's pull of one remote origin's outbox into this region:
// its reads over the WAN, its applies here, its checkpoint and its lag. (A
// "link" in lab/link is a Toxiproxy proxy; the bridge's /status JSON,
// metrics and log lines still say link for a feed: they are promises to
// their readers.)
type feed struct {
	b      *Bridge
	origin string
	remote redis.UniversalClient // a *redis.ClusterClient when the origin runs a cluster
	log    *slog.Logger
	parts  []broker.OutboxPartition // the origin's outbox streams: one, or its partitions

	mu          sync.Mutex
	up          bool
	checkpoint  string
	appliedN    []int64   // per partition: n of the last applied outbox entry
	savedN      []int64   // per partition: n of the entry the saved checkpoint names (0: unknown)
	remoteN     []int64   // per partition: the origin's outbox counter, as last read
	originLife  []string  // per partition: the origin's data life last read ("" before the first)
	lifeSaved   []string  // per partition: the origin's data life as saved here (originLifeKey)
	lagSince    time.Time // origin time of the oldest event not yet applied; zero when caught up
	lastSeen    time.Time // last successful read of the remote outbox
	state       string
	lastErr     string
	applied     int64
	dups        int64
	gaps        int64
	rejected    int64
	restarts    int64 // times the origin's outbox was found started over (its Redis lost data)
	localLosses int64 // times this region's Redis was found to have lost its data (its life changed)
}

func newFeed(b *Bridge, origin string, remote redis.UniversalClient) *feed {
	parts := broker.LayoutOf(remote).Outboxes(origin)
	return &feed{b: b, origin: origin, remote: remote, parts: parts, state: "ok", lastSeen: time.Now(),
		log: b.log.With("origin", origin), appliedN: make([]int64, len(parts)), remoteN: make([]int64, len(parts)), savedN: make([]int64, len(parts)),
		originLife: make([]string, len(parts)), lifeSaved: make([]string, len(parts))}
}

// run pulls until ctx ends: read a batch after the checkpoint, apply each
// event in order, then advance the checkpoint. Failures back off and retry
// from the checkpoint.
//
// An origin on a Redis Cluster has one outbox stream per partition, each
// with its own checkpoint; every room is in one partition, so applying each
// partition in its stream order keeps every room's order (docs/federation.md).
func (f *feed) run(ctx context.Context) {
	// The life first: checkpoints read after it belong to it or to a later
	// one, which the first look in the loop then finds.
	life, ok := f.regionLife(ctx)
	if !ok {
		return
	}
	ckpts := make([]string, len(f.parts))
	for i, p := range f.parts {
		var ok bool
		if ckpts[i], f.savedN[i], ok = f.loadCheckpoint(ctx, p); !ok {
			return
		}
		if f.originLife[i], ok = f.loadOriginLife(ctx, p); !ok {
			return
		}
		f.lifeSaved[i] = f.originLife[i]
	}
	attempt, unsaved := 0, 0
	for ctx.Err() == nil {
		batches, remoteN, lives, err := f.read(ctx, ckpts)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if c, ok := f.remote.(*redis.ClusterClient); ok {
				// A primary that died answers errors, never MOVED: read
				// the slot map again, in case a replica took over.
				c.ReloadState(ctx)
			}
			f.setDown(err)
			attempt++
			if !retryPause(ctx, attempt) {
				return
			}
			continue
		}
		attempt = 0
		// This region's Redis may have lost its data since the last look
		// (broker.RegionLife), before or after the checkpoints saved since:
		// everything applied here in its old life is gone, and the saved
		// checkpoints, if any survive, no longer say what it holds. Apply
		// the origin's outbox again from its start (what it no longer
		// holds becomes a gap, recorded); events that came through in the
		// new life are dropped as duplicates.
		now, ok := f.regionLife(ctx)
		if !ok {
			return
		}
		if now != life {
			f.localDataLost(ckpts)
			life = now
			continue
		}
		f.setUp(remoteN, batches)
		// The origin lost its data since the last read when its outbox
		// counts again from below the saved checkpoint, or when its data
		// life changed: the second sees it even when nothing of the origin
		// was ever applied here, so that no checkpoint names a number.
		var lost []int
		for i := range f.parts {
			if f.startedOver(i, remoteN[i], batches[i]) || f.originLife[i] != "" && lives[i] != f.originLife[i] {
				lost = append(lost, i)
			}
		}
		if len(lost) > 0 {
			// Before anything of the origin's new life is applied: the
			// old life's unshipped events are lost, and every room that
			// had some of it, or that it may have published into unseen,
			// is told so now, not at the origin's next event in that
			// room, which may never come.
			if !f.endOrigin(ctx, lost, remoteN, lives) {
				return
			}
			for _, i := range lost {
				if !f.saveCheckpoint(ctx, i, ckpts[i], 0) {
					return
				}
			}
		}
		for i := range f.parts {
			f.originLife[i] = lives[i]
			if lives[i] != f.lifeSaved[i] && !f.saveOriginLife(ctx, i, lives[i]) {
				return
			}
		}
		total := 0
		for i, entries := range batches {
			total += len(entries)
			for _, e := range entries {
				if !f.apply(ctx, i, e) {
					return
				}
			}
			if len(entries) > 0 {
				last := entries[len(entries)-1]
				if faulty.On("noapplydedup") {
					// MUTANT noapplydedup (with publish.lua's apply made
					// non-idempotent, gateway/broker/broker.go): the checkpoint
					// is saved only every 100 events, so a bridge killed and
					// restarted replays up to 99 applied events, and applies
					// them again.
					if unsaved += len(entries); unsaved < 100 {
						ckpts[i] = last.id
						continue
					}
					unsaved = 0
				}
				if !f.saveCheckpoint(ctx, i, last.id, last.n) {
					return
				}
				ckpts[i] = last.id
			}
		}
		if total == 0 && len(f.parts) > 1 && !backoff.Sleep(ctx, min(f.b.cfg.Block, clusterPoll)) {
			return
		}
	}
}

// outboxEntry is one entry read from an outbox, as validateEntry parsed it.
type outboxEntry struct {
	kind string // "" an event, "s" a session ownership record
	id   string
	// bad says why the entry must not be applied (nil: apply it).
	bad *rejection
	// session records only: the session, its owner region and epoch
	session    string
	owner      string
	ownerEpoch int64
	sub        string // the token subject the session is bound to ("" from a gateway that predates binding)
	ms         int64
	n          int64
	room       string
	origin     string
	oseq       uint64
	epoch      string
	frame      string
	// events only: the frame's event id and sender, and the publisher's
	// message id ("" from a gateway that predates carrying it)
	eventID  string
	sender   string
	clientID string
}

// read reads, in one pipelined round trip (per node of a cluster), each
// outbox stream's data life, counter and up to a batch of its entries
// after its checkpoint: the entries by partition, the counters and the
// lives. The life is read first, so that the entries belong to it or to a
// later one, which the next read finds; a Redis that lost its data has
// none until its first reader names one, and the feed then names it
// (broker.LifeOf).
func (f *feed) read(ctx context.Context, ckpts []string) ([][]outboxEntry, []int64, []string, error) {
	// One read, connection setup included, never outlives the block time
	// plus a WAN round trip's timeout: on a blackholed WAN nothing answers
	// and only this deadline ends the wait.
	ctx, cancel := context.WithTimeout(ctx, f.readBound())
	defer cancel()
	// One stream waits (BLOCK) for its next entries; several, of several
	// slots, cannot in one command, and are read without waiting (-1).
	block := f.b.cfg.Block
	if len(f.parts) > 1 {
		block = -1
	}
	pipe := f.remote.Pipeline()
	lifeCmds := make([]*redis.StringCmd, len(f.parts))
	counters := make([]*redis.StringCmd, len(f.parts))
	reads := make([]*redis.XStreamSliceCmd, len(f.parts))
	for i, p := range f.parts {
		lifeCmds[i] = pipe.Get(ctx, p.Life)
		counters[i] = pipe.Get(ctx, p.Counter)
		reads[i] = pipe.XRead(ctx, &redis.XReadArgs{Streams: []string{p.Stream, ckpts[i]},
			Count: int64(f.b.cfg.Batch), Block: block})
	}
	_, err := pipe.Exec(ctx)
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, nil, err
	}
	out := make([][]outboxEntry, len(f.parts))
	remoteN := make([]int64, len(f.parts))
	lives := make([]string, len(f.parts))
	for i, p := range f.parts {
		remoteN[i], _ = counters[i].Int64()
		if lives[i], err = lifeCmds[i].Result(); errors.Is(err, redis.Nil) {
			lives[i], err = broker.LifeOf(ctx, f.remote, p.Life)
		}
		if err != nil {
			return nil, nil, nil, err
		}
		streams, err := reads[i].Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, nil, nil, err
		}
		for _, s := range streams {
			for _, m := range s.Messages {
				e, bad := validateEntry(f.origin, f.b.cfg.MaxFrameBytes, m.ID, m.Values)
				e.bad = bad
				out[i] = append(out[i], e)
			}
		}
	}
	return out, remoteN, lives, nil
}

// apply applies one event to this region, retrying while this region's
// Redis is unavailable; it returns false only when ctx ended. An entry
// validateEntry refused is counted and logged, never applied, and the
// feed moves past it.
func (f *feed) apply(ctx context.Context, part int, e outboxEntry) bool {
	switch {
	case e.bad != nil && e.bad.reason == reasonNotOrigin:
		// Only the origin's own publishes enter its outbox; anything else
		// would be an echo. Never forward it.
		f.b.m.skipped.WithLabelValues(f.origin, "not_origin").Inc()
		f.log.Error("outbox entry of another origin skipped: loop prevention", "entry", e.id, "entry_origin", cut(e.origin))
		return true
	case e.bad != nil:
		f.refuse(e)
		return true
	case e.kind == "s":
		return f.applySession(ctx, part, e)
	case !f.b.cfg.Federated(e.room):
		f.b.m.skipped.WithLabelValues(f.origin, "not_federated").Inc()
		return true
	}
	req := broker.ApplyRequest{Room: e.room, Origin: e.origin, Oseq: e.oseq, Epoch: e.epoch, Frame: []byte(e.frame),
		EventID: e.eventID, Sender: e.sender, ClientID: e.clientID}
	attempt := 0
	for {
		res, err := f.b.broker.Apply(ctx, req)
		if err == nil && res.Status == "gap" {
			// Events before this one never reached this region and cannot:
			// the outbox no longer holds them. Record the gap, then go on.
			f.b.m.gaps.WithLabelValues(f.origin).Inc()
			f.mu.Lock()
			f.gaps++
			f.mu.Unlock()
			f.log.Error("gap: events of this origin are lost for this region", "room", e.room,
				"have_oseq", res.Oseq, "next_oseq", e.oseq)
			if err = f.b.broker.MarkGap(ctx, e.room, e.origin, e.oseq-1); err == nil {
				req.Force = true
				continue
			}
		}
		if err == nil && res.Status == "ok" && faulty.On("echo") {
			// MUTANT echo breaks G7's loop prevention: an event applied here
			// is also appended to this region's outbox with its original
			// origin, so every other region's bridge reads it back (a second
			// hop) and must refuse it at the door.
			n, ierr := f.b.local.Incr(ctx, broker.OutboxCounterKey(f.b.cfg.Region)).Result()
			if ierr == nil {
				ierr = f.b.local.XAdd(ctx, &redis.XAddArgs{Stream: broker.OutboxKey(f.b.cfg.Region),
					Values: []any{"r", e.room, "n", n, "o", e.origin, "q", e.oseq, "e", e.epoch, "f", e.frame}}).Err()
			}
			if ierr != nil {
				f.log.Warn("echo failed", "err", ierr)
			}
		}
		if err == nil {
			f.mu.Lock()
			f.appliedN[part] = e.n
			if res.Status == "dup" {
				f.dups++
			} else {
				f.applied++
			}
			f.mu.Unlock()
			if res.Status == "dup" {
				f.b.m.duplicates.WithLabelValues(f.origin).Inc()
			} else {
				f.b.m.applied.WithLabelValues(f.origin).Inc()
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		f.localFailed(ctx)
		attempt++
		f.log.Warn("apply failed; retrying", "room", e.room, "oseq", e.oseq, "err", err)
		if !retryPause(ctx, attempt) {
			return false
		}
	}
}

// refuse counts and logs an entry that broke a rule of the outbox. It
// writes no gap marker: the entry's own fields are what is not trusted. If
// it stood for a real event, the next valid event of its room and origin
// finds the sequence one ahead and the gap is counted, marked and
// announced there, from trusted data (docs/federation.md).
func (f *feed) refuse(e outboxEntry) {
	f.b.m.rejected.WithLabelValues(f.origin, e.bad.reason).Inc()
	// skipped_total counts every entry not applied; a refused one there
	// keeps the reason it always had.
	f.b.m.skipped.WithLabelValues(f.origin, "malformed").Inc()
	f.mu.Lock()
	f.rejected++
	f.mu.Unlock()
	f.log.Error("outbox entry refused", "entry", e.id, "reason", e.bad.reason, "detail", e.bad.detail)
}

// applySession carries a remote session ownership record into this region
// (G11): the higher epoch wins; a region that loses a session it owned
// tells its gateways, which close that session's connections.
func (f *feed) applySession(ctx context.Context, part int, e outboxEntry) bool {
	var own broker.Ownership
	if !f.retry(ctx, "apply session record failed", func() (err error) {
		own, err = f.b.broker.ApplySession(ctx, e.session, e.owner, e.ownerEpoch, e.sub)
		return err
	}, "session", e.session) {
		return false
	}
	f.mu.Lock()
	f.appliedN[part] = e.n
	f.mu.Unlock()
	f.b.m.sessions.WithLabelValues(f.origin, own.Status).Inc()
	if own.Status == "won" {
		f.log.Info("session ownership applied", "session", e.session, "owner", e.owner, "epoch", e.ownerEpoch)
	}
	return true
}

// startedOver reports whether the origin's outbox partition part started
// over since the saved checkpoint: its counter is below the n the
// checkpoint names, or its first entry after the checkpoint numbers at or
// below it. Only a Redis that lost its data (restarted empty, or from an
// older snapshot, or a replica promoted before it had the last writes)
// numbers an outbox again.
func (f *feed) startedOver(part int, remoteN int64, entries []outboxEntry) bool {
	saved := f.savedN[part]
	if saved <= 0 {
		return false
	}
	if remoteN < saved {
		return true
	}
	for _, e := range entries {
		if e.n > 0 {
			return e.n <= saved
		}
	}
	return false
}

// endOrigin ends, in every room of this region, the life of the origin's
// sequences that the lost outbox partitions carried (broker.EndOrigin),
// retrying while this region's Redis is unavailable; false only when ctx
// ended. One call serves every partition found lost at once: each call
// tells the subscribers of a room that held nothing of the origin again.
func (f *feed) endOrigin(ctx context.Context, lost []int, remoteN []int64, lives []string) bool {
	f.b.m.restarts.WithLabelValues(f.origin).Inc()
	f.mu.Lock()
	f.restarts++
	for _, i := range lost {
		f.appliedN[i] = 0
	}
	f.mu.Unlock()
	for _, i := range lost {
		f.log.Error("the origin lost its data: the events it had not shipped here are lost; ending its sequences in every room",
			"partition", f.parts[i].Name, "checkpoint_n", f.savedN[i], "origin_n", remoteN[i],
			"life_before", f.originLife[i], "life_now", lives[i])
	}
	var n int
	if !f.retry(ctx, "ending the origin's sequences failed", func() (err error) {
		n, err = f.b.broker.EndOrigin(ctx, f.origin, broker.HeldBy(f.remote, f.origin), f.b.cfg.Federated)
		return err
	}) {
		return false
	}
	f.log.Warn("origin's sequences ended; subscribers told (recovered:false, epoch_changed)", "rooms", n)
	return true
}

// regionLife reads the data life of this region's Redis, retrying until
// it answers or ctx ends.
func (f *feed) regionLife(ctx context.Context) (life string, ok bool) {
	ok = f.retry(ctx, "reading the data life of this region's redis failed", func() (err error) {
		life, err = f.b.broker.RegionLife(ctx)
		return err
	})
	return life, ok
}

// localDataLost starts every partition of the origin's outbox again from
// its start: this region's Redis lost its data, and with it what this feed
// had applied there.
func (f *feed) localDataLost(ckpts []string) {
	f.b.m.localLosses.WithLabelValues(f.origin).Inc()
	f.mu.Lock()
	f.localLosses++
	f.checkpoint = "0-0"
	f.mu.Unlock()
	f.log.Warn("this region's redis lost its data: what was applied here from this origin is gone; applying its outbox again from its start",
		"checkpoints", strings.Join(ckpts, ","))
	for i := range ckpts {
		ckpts[i] = "0-0"
		f.savedN[i] = 0
		f.lifeSaved[i] = "" // gone with the data: saved again at the next read
	}
}

// loadCheckpoint reads the checkpoint of partition part: the id of the last
// entry applied here, and its outbox number n (0 when the checkpoint is
// from a bridge that did not save it). The key holds "ID N", or "ID".
func (f *feed) loadCheckpoint(ctx context.Context, part broker.OutboxPartition) (string, int64, bool) {
	var v string
	if !f.retry(ctx, "read checkpoint failed", func() (err error) {
		if v, err = f.b.local.Get(ctx, checkpointKey(f.origin, part)).Result(); errors.Is(err, redis.Nil) {
			v, err = "0-0", nil
		}
		return err
	}) {
		return "", 0, false
	}
	id, nText, _ := strings.Cut(v, " ")
	var n int64
	if nText != "" {
		var err error
		if n, err = strconv.ParseInt(nText, 10, 64); err != nil || n < 0 {
			f.log.Warn("checkpoint's outbox number is not a count; not checking whether the origin started over until the next save",
				"checkpoint", v, "partition", part.Name)
			n = 0
		}
	}
	if part.Name == "" || part.Name == "0" {
		f.mu.Lock()
		f.checkpoint = id
		f.mu.Unlock()
	}
	f.log.Info("link starting", "checkpoint", id, "n", n, "partition", part.Name)
	return id, n, true
}

// loadOriginLife reads the origin's data life under which partition part
// was last read ("" when none was saved: the feed's first read names it).
func (f *feed) loadOriginLife(ctx context.Context, part broker.OutboxPartition) (life string, ok bool) {
	ok = f.retry(ctx, "read the origin's data life failed", func() error {
		var err error
		if life, err = f.b.local.Get(ctx, originLifeKey(f.origin, part)).Result(); errors.Is(err, redis.Nil) {
			life, err = "", nil
		}
		return err
	})
	return life, ok
}

// saveOriginLife saves the origin's data life under which partition part
// was read.
func (f *feed) saveOriginLife(ctx context.Context, part int, life string) bool {
	if !f.retry(ctx, "save the origin's data life failed", func() error {
		return f.b.local.Set(ctx, originLifeKey(f.origin, f.parts[part]), life, 0).Err()
	}) {
		return false
	}
	f.lifeSaved[part] = life
	return true
}

// saveCheckpoint saves partition part's checkpoint: the id of the last
// entry applied here and its outbox number n.
func (f *feed) saveCheckpoint(ctx context.Context, part int, id string, n int64) bool {
	if !f.retry(ctx, "save checkpoint failed", func() error {
		return f.b.local.Set(ctx, checkpointKey(f.origin, f.parts[part]), id+" "+strconv.FormatInt(n, 10), 0).Err()
	}) {
		return false
	}
	f.mu.Lock()
	f.checkpoint = id
	f.mu.Unlock()
	f.savedN[part] = n
	return true
}

// retry runs op, a command to this region's Redis, until it succeeds,
// logging each failure as failed (with logArgs) and pausing with retryPause (this region's
// Redis may be restarting, or failing over: localFailed); false only when
// ctx ended.
func (f *feed) retry(ctx context.Context, failed string, op func() error, logArgs ...any) bool {
	for attempt := 1; ; attempt++ {
		err := op()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		f.localFailed(ctx)
		f.log.Warn(failed+"; retrying", append(logArgs, "err", err)...)
		if !retryPause(ctx, attempt) {
			return false
		}
	}
}

// localFailed is called after a command to this region's Redis failed. On a
// cluster the key's primary may have died, and a dead primary never answers
// MOVED: go-redis keeps sending it the slot's commands until it comes back,
// so every retry loop on this region's Redis reads the slot map again, in
// case a replica took over. Without it the feed applied nothing for as long
// as a killed shard stayed down, though its replica had taken over in
// seconds (the chaos spec "loses, doubles and disconnects nothing through a
// shard-kill under load" then ended with the feed still catching up).
func (f *feed) localFailed(ctx context.Context) {
	if c, ok := f.b.local.(*redis.ClusterClient); ok {
		c.ReloadState(ctx)
	}
}

func (f *feed) setUp(remoteN []int64, batches [][]outboxEntry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.up {
		f.log.Info("link up")
	}
	f.up, f.lastErr = true, ""
	f.lastSeen = time.Now()
	copy(f.remoteN, remoteN)
	f.lagSince = time.Time{}
	for i, entries := range batches {
		if len(entries) == 0 {
			f.appliedN[i] = max(f.appliedN[i], remoteN[i])
			continue
		}
		if t := time.UnixMilli(entries[0].ms); f.lagSince.IsZero() || t.Before(f.lagSince) {
			f.lagSince = t
		}
	}
	f.b.m.feedUp.WithLabelValues(f.origin).Set(1)
}

// behindLocked is how many outbox events of the origin are not applied
// here yet, as of the last read; f.mu is held.
func (f *feed) behindLocked() int64 {
	var n int64
	for i := range f.remoteN {
		n += max(f.remoteN[i]-f.appliedN[i], 0)
	}
	return n
}

func (f *feed) setDown(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.up || f.lastErr == "" {
		f.log.Warn("link down; retrying from the checkpoint", "err", err)
	}
	f.up, f.lastErr = false, err.Error()
	f.b.m.feedUp.WithLabelValues(f.origin).Set(0)
}

// lagLocked: when the feed is down nothing is known of what the origin did
// since the last read, so the lag counts from then (an upper bound).
//
// A read that hangs (a blackholed WAN: connections accepted, nothing
// answers) counts as down once nothing was read for longer than a read may
// take: the feed cannot know it is cut until its timeout fires, but its lag
// must not read 0 meanwhile.
func (f *feed) lagLocked(now time.Time) time.Duration {
	since := f.lagSince
	silent := now.Sub(f.lastSeen) > f.readBound()
	if (!f.up || silent) && (since.IsZero() || f.lastSeen.Before(since)) {
		since = f.lastSeen
	}
	if since.IsZero() || now.Before(since) {
		return 0
	}
	return now.Sub(since)
}

func (f *feed) observeLag(now time.Time) {
	f.mu.Lock()
	lag := f.lagLocked(now)
	behind := f.behindLocked()
	state := "ok"
	switch {
	case lag >= f.b.cfg.Lag.Alert:
		state = "alert"
	case lag >= f.b.cfg.Lag.Warn:
		state = "warn"
	}
	prev := f.state
	f.state = state
	f.mu.Unlock()
	f.b.m.lagSeconds.WithLabelValues(f.origin).Set(lag.Seconds())
	f.b.m.lagEvents.WithLabelValues(f.origin).Set(float64(behind))
	f.b.m.lagState.WithLabelValues(f.origin).Set(map[string]float64{"ok": 0, "warn": 1, "alert": 2}[state])
	if state != prev {
		lvl := slog.LevelInfo
		switch state {
		case "warn":
			lvl = slog.LevelWarn
		case "alert":
			lvl = slog.LevelError
		}
		f.log.Log(context.Background(), lvl, "replication lag state changed", "from", prev, "to", state,
			"lag", lag.Round(time.Millisecond).String(), "events_behind", behind)
	}
}

func (f *feed) status(now time.Time) FeedStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return FeedStatus{Origin: f.origin, Up: f.up, LagSeconds: f.lagLocked(now).Seconds(),
		LagEvents: f.behindLocked(), State: f.state, Applied: f.applied, Duplicates: f.dups,
		Gaps: f.gaps, Rejected: f.rejected, OriginRestarts: f.restarts, LocalDataLost: f.localLosses, Checkpoint: f.checkpoint, LastError: f.lastErr}
}

// retryPause paces the feed's retries: 50 ms doubling to 2 s, full jitter.
func retryPause(ctx context.Context, attempt int) bool {
	return backoff.Sleep(ctx, backoff.FullJitter(50*time.Millisecond, 2*time.Second, attempt, nil))
}

// readBound is the longest one outbox read may take: the block time plus a
// WAN round trip's read timeout.
func (f *feed) readBound() time.Duration {
	return f.b.cfg.Block + f.b.remote.ReadTimeout
}
