package federation

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/geolab/geolab/gateway/broker"
	"github.com/geolab/geolab/internal/backoff"
	"github.com/geolab/geolab/internal/faulty"
)

// checkpointKey holds, in this region's Redis, the id of the last event of
// origin's outbox applied here.
func checkpointKey(origin string) string { return "geolab:fed:ckpt:" + origin }

// link pulls one remote region's outbox into this region.
type link struct {
	b      *Bridge
	origin string
	remote *redis.Client
	log    *slog.Logger

	mu         sync.Mutex
	up         bool
	checkpoint string
	appliedN   int64     // n of the last applied outbox entry
	remoteN    int64     // the origin's outbox counter, as last read
	lagSince   time.Time // origin time of the oldest event not yet applied; zero when caught up
	lastSeen   time.Time // last successful read of the remote outbox
	state      string
	lastErr    string
	applied    int64
	dups       int64
	gaps       int64
}

func newLink(b *Bridge, origin string, remote *redis.Client) *link {
	return &link{b: b, origin: origin, remote: remote, state: "ok", lastSeen: time.Now(),
		log: b.log.With("origin", origin)}
}

// run pulls until ctx ends: read a batch after the checkpoint, apply each
// event in order, then advance the checkpoint. Failures back off and retry
// from the checkpoint.
func (l *link) run(ctx context.Context) {
	ckpt, ok := l.loadCheckpoint(ctx)
	if !ok {
		return
	}
	attempt, unsaved := 0, 0
	for ctx.Err() == nil {
		entries, remoteN, err := l.read(ctx, ckpt)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			l.setDown(err)
			attempt++
			if !retryPause(ctx, attempt) {
				return
			}
			continue
		}
		attempt = 0
		l.setUp(remoteN, entries)
		for _, e := range entries {
			if !l.apply(ctx, e) {
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
					ckpt = last.id
					continue
				}
				unsaved = 0
			}
			if !l.saveCheckpoint(ctx, last.id) {
				return
			}
			ckpt = last.id
		}
	}
}

// outboxEntry is one event read from an outbox.
type outboxEntry struct {
	kind string // "" an event, "s" a session ownership record
	id   string
	// session records only: the session, its owner region and epoch
	session    string
	owner      string
	ownerEpoch int64
	ms         int64
	n          int64
	room       string
	origin     string
	oseq       uint64
	epoch      string
	frame      string
}

func (l *link) read(ctx context.Context, ckpt string) ([]outboxEntry, int64, error) {
	// One read, connection setup included, never outlives the block time
	// plus a WAN round trip's timeout: on a blackholed link nothing answers
	// and only this deadline ends the wait.
	ctx, cancel := context.WithTimeout(ctx, l.readBound())
	defer cancel()
	pipe := l.remote.Pipeline()
	counter := pipe.Get(ctx, broker.OutboxCounterKey(l.origin))
	xr := pipe.XRead(ctx, &redis.XReadArgs{Streams: []string{broker.OutboxKey(l.origin), ckpt},
		Count: int64(l.b.cfg.Batch), Block: l.b.cfg.Block})
	_, err := pipe.Exec(ctx)
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, 0, err
	}
	remoteN, _ := counter.Int64()
	streams, err := xr.Result()
	if errors.Is(err, redis.Nil) {
		return nil, remoteN, nil
	}
	if err != nil {
		return nil, 0, err
	}
	var out []outboxEntry
	for _, s := range streams {
		for _, m := range s.Messages {
			e := outboxEntry{id: m.ID}
			id, _ := broker.ParseStreamID(m.ID)
			e.ms = int64(id.Ms)
			e.kind, _ = m.Values["t"].(string)
			e.room, _ = m.Values["r"].(string)
			if e.kind == "s" {
				e.session, _ = m.Values["s"].(string)
				e.owner, _ = m.Values["g"].(string)
				p, _ := m.Values["p"].(string)
				e.ownerEpoch, _ = strconv.ParseInt(p, 10, 64)
			}
			e.origin, _ = m.Values["o"].(string)
			e.epoch, _ = m.Values["e"].(string)
			e.frame, _ = m.Values["f"].(string)
			n, _ := m.Values["n"].(string)
			e.n, _ = strconv.ParseInt(n, 10, 64)
			q, _ := m.Values["q"].(string)
			e.oseq, _ = strconv.ParseUint(q, 10, 64)
			out = append(out, e)
		}
	}
	return out, remoteN, nil
}

// apply applies one event to this region, retrying while this region's
// Redis is unavailable; it returns false only when ctx ended.
func (l *link) apply(ctx context.Context, e outboxEntry) bool {
	switch {
	case e.origin != l.origin:
		// Only the origin's own publishes enter its outbox; anything else
		// would be an echo. Never forward it.
		l.b.m.skipped.WithLabelValues(l.origin, "not_origin").Inc()
		l.log.Error("outbox entry of another origin skipped: loop prevention", "entry", e.id, "entry_origin", e.origin)
		return true
	case e.kind == "s" && (e.session == "" || e.owner == "" || e.ownerEpoch < 1):
		l.b.m.skipped.WithLabelValues(l.origin, "malformed").Inc()
		l.log.Error("malformed session record skipped", "entry", e.id)
		return true
	case e.kind == "s":
		return l.applySession(ctx, e)
	case e.room == "" || e.oseq == 0 || e.frame == "":
		l.b.m.skipped.WithLabelValues(l.origin, "malformed").Inc()
		l.log.Error("malformed outbox entry skipped", "entry", e.id)
		return true
	case !l.b.cfg.Federated(e.room):
		l.b.m.skipped.WithLabelValues(l.origin, "not_federated").Inc()
		return true
	}
	req := broker.ApplyRequest{Room: e.room, Origin: e.origin, Oseq: e.oseq, Epoch: e.epoch, Frame: []byte(e.frame)}
	attempt := 0
	for {
		res, err := l.b.broker.Apply(ctx, req)
		if err == nil && res.Status == "gap" {
			// Events before this one never reached this region and cannot:
			// the outbox no longer holds them. Record the gap, then go on.
			l.b.m.gaps.WithLabelValues(l.origin).Inc()
			l.mu.Lock()
			l.gaps++
			l.mu.Unlock()
			l.log.Error("gap: events of this origin are lost for this region", "room", e.room,
				"have_oseq", res.Oseq, "next_oseq", e.oseq)
			if err = l.b.broker.MarkGap(ctx, e.room, e.origin, e.oseq-1); err == nil {
				req.Force = true
				continue
			}
		}
		if err == nil && res.Status == "ok" && faulty.On("echo") {
			// MUTANT echo breaks G7's loop prevention: an event applied here
			// is also appended to this region's outbox with its original
			// origin, so every other region's bridge reads it back (a second
			// hop) and must refuse it at the door.
			n, ierr := l.b.local.Incr(ctx, broker.OutboxCounterKey(l.b.cfg.Region)).Result()
			if ierr == nil {
				ierr = l.b.local.XAdd(ctx, &redis.XAddArgs{Stream: broker.OutboxKey(l.b.cfg.Region),
					Values: []any{"r", e.room, "n", n, "o", e.origin, "q", e.oseq, "e", e.epoch, "f", e.frame}}).Err()
			}
			if ierr != nil {
				l.log.Warn("echo failed", "err", ierr)
			}
		}
		if err == nil {
			l.mu.Lock()
			l.appliedN = e.n
			if res.Status == "dup" {
				l.dups++
			} else {
				l.applied++
			}
			l.mu.Unlock()
			if res.Status == "dup" {
				l.b.m.duplicates.WithLabelValues(l.origin).Inc()
			} else {
				l.b.m.applied.WithLabelValues(l.origin).Inc()
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		attempt++
		l.log.Warn("apply failed; retrying", "room", e.room, "oseq", e.oseq, "err", err)
		if !retryPause(ctx, attempt) {
			return false
		}
	}
}

// applySession carries a remote session ownership record into this region
// (G11): the higher epoch wins; a region that loses a session it owned
// tells its gateways, which close that session's connections.
func (l *link) applySession(ctx context.Context, e outboxEntry) bool {
	attempt := 0
	for {
		own, err := l.b.broker.ApplySession(ctx, e.session, e.owner, e.ownerEpoch)
		if err == nil {
			l.mu.Lock()
			l.appliedN = e.n
			l.mu.Unlock()
			l.b.m.sessions.WithLabelValues(l.origin, own.Status).Inc()
			if own.Status == "won" {
				l.log.Info("session ownership applied", "session", e.session, "owner", e.owner, "epoch", e.ownerEpoch)
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		attempt++
		l.log.Warn("apply session record failed; retrying", "session", e.session, "err", err)
		if !retryPause(ctx, attempt) {
			return false
		}
	}
}

func (l *link) loadCheckpoint(ctx context.Context) (string, bool) {
	attempt := 0
	for {
		v, err := l.b.local.Get(ctx, checkpointKey(l.origin)).Result()
		if errors.Is(err, redis.Nil) {
			v, err = "0-0", nil
		}
		if err == nil {
			l.mu.Lock()
			l.checkpoint = v
			l.mu.Unlock()
			l.log.Info("link starting", "checkpoint", v)
			return v, true
		}
		attempt++
		l.log.Warn("read checkpoint failed; retrying", "err", err)
		if !retryPause(ctx, attempt) {
			return "", false
		}
	}
}

func (l *link) saveCheckpoint(ctx context.Context, id string) bool {
	attempt := 0
	for {
		err := l.b.local.Set(ctx, checkpointKey(l.origin), id, 0).Err()
		if err == nil {
			l.mu.Lock()
			l.checkpoint = id
			l.mu.Unlock()
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		attempt++
		l.log.Warn("save checkpoint failed; retrying", "err", err)
		if !retryPause(ctx, attempt) {
			return false
		}
	}
}

func (l *link) setUp(remoteN int64, entries []outboxEntry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.up {
		l.log.Info("link up")
	}
	l.up, l.lastErr = true, ""
	l.lastSeen = time.Now()
	l.remoteN = remoteN
	if len(entries) > 0 {
		l.lagSince = time.UnixMilli(entries[0].ms)
	} else {
		l.lagSince = time.Time{}
		l.appliedN = max(l.appliedN, remoteN)
	}
	l.b.m.linkUp.WithLabelValues(l.origin).Set(1)
}

func (l *link) setDown(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.up || l.lastErr == "" {
		l.log.Warn("link down; retrying from the checkpoint", "err", err)
	}
	l.up, l.lastErr = false, err.Error()
	l.b.m.linkUp.WithLabelValues(l.origin).Set(0)
}

// lagLocked: when the link is down nothing is known of what the origin did
// since the last read, so the lag counts from then (an upper bound).
//
// A read that hangs (a blackholed link: connections accepted, nothing
// answers) counts as down once nothing was read for longer than a read may
// take: the link cannot know it is cut until its timeout fires, but its lag
// must not read 0 meanwhile.
func (l *link) lagLocked(now time.Time) time.Duration {
	since := l.lagSince
	silent := now.Sub(l.lastSeen) > l.readBound()
	if (!l.up || silent) && (since.IsZero() || l.lastSeen.Before(since)) {
		since = l.lastSeen
	}
	if since.IsZero() || now.Before(since) {
		return 0
	}
	return now.Sub(since)
}

func (l *link) observeLag(now time.Time) {
	l.mu.Lock()
	lag := l.lagLocked(now)
	behind := max(l.remoteN-l.appliedN, 0)
	state := "ok"
	switch {
	case lag >= l.b.cfg.Lag.Alert:
		state = "alert"
	case lag >= l.b.cfg.Lag.Warn:
		state = "warn"
	}
	prev := l.state
	l.state = state
	l.mu.Unlock()
	l.b.m.lagSeconds.WithLabelValues(l.origin).Set(lag.Seconds())
	l.b.m.lagEvents.WithLabelValues(l.origin).Set(float64(behind))
	l.b.m.lagState.WithLabelValues(l.origin).Set(map[string]float64{"ok": 0, "warn": 1, "alert": 2}[state])
	if state != prev {
		lvl := slog.LevelInfo
		switch state {
		case "warn":
			lvl = slog.LevelWarn
		case "alert":
			lvl = slog.LevelError
		}
		l.log.Log(context.Background(), lvl, "replication lag state changed", "from", prev, "to", state,
			"lag", lag.Round(time.Millisecond).String(), "events_behind", behind)
	}
}

func (l *link) status(now time.Time) LinkStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	return LinkStatus{Origin: l.origin, Up: l.up, LagSeconds: l.lagLocked(now).Seconds(),
		LagEvents: max(l.remoteN-l.appliedN, 0), State: l.state, Applied: l.applied, Duplicates: l.dups,
		Gaps: l.gaps, Checkpoint: l.checkpoint, LastError: l.lastErr}
}

// retryPause paces the link's retries: 50 ms doubling to 2 s, full jitter.
func retryPause(ctx context.Context, attempt int) bool {
	return backoff.Sleep(ctx, backoff.FullJitter(50*time.Millisecond, 2*time.Second, attempt, nil))
}

// readBound is the longest one outbox read may take: the block time plus a
// WAN round trip's read timeout.
func (l *link) readBound() time.Duration {
	return l.b.cfg.Block + linkProfile(l.b.cfg.Profile).read
}
