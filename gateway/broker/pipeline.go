package broker

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// PublishBatch publishes ps as Publish would, each its own run of
// publish.lua, in the order given, and returns each one's result or error at
// its index. On one Redis (Standalone) the calls go in one pipeline: one
// round trip for all of them, sent on one connection.
//
// Order. A caller (a client connection) needs the events of ps numbered in
// the order of ps: two publishes of one client into one room must get their
// oseqs, and stream ids, in the order the client sent them (G2). Redis runs
// the commands of one connection one after the other, in the order it reads
// them, and a pipeline is written on one connection in slice order; each
// publish.lua run is atomic. So the i-th publish is stored before the
// (i+1)-th, whatever other connections do in between. The ways a pipeline can
// go wrong keep that order among the publishes that succeed:
//   - a pipeline is sent once: when its connection is lost or times out,
//     every publish of it is answered unavailable, and the client retries
//     them with the same ids, in its order; a publish that Redis had run
//     already answers "dup" with its first result (its idempotency record),
//     so it keeps its number;
//   - a publish answered with an error (OOM, NOSCRIPT, a timeout) is not
//     stored: the client is told so, and its retry comes after the others,
//     as it would when each publish was its own round trip;
//   - NOSCRIPT (Redis lost its script cache: restarted, or SCRIPT FLUSH): the
//     pipeline uses EVALSHA, which stores nothing when refused. From the first
//     refused publish on, every publish that was refused is run again with
//     EVAL, in order, in a second pipeline, as long as none after the first
//     refused one was stored (another connection's EVAL may load the script
//     in between); otherwise the refused ones answer the error, not stored,
//     rather than being stored after a later publish of the batch.
//
// Under replicated durability (RequireReplica) the publishes are run one at
// a time as well, each with its WAIT on its own connection (Publish): WAIT
// counts the writes of the connection it runs on. On a Redis Cluster the
// publishes are run one at a time, each its own round trip, as Publish does: go-redis sends a cluster pipeline per node and
// retries the commands a MOVED, ASK or TRYAGAIN answer sent elsewhere after
// the others, which could store a later publish of one room (one slot)
// before an earlier one while the slot moves.
func (b *Broker) PublishBatch(ctx context.Context, ps []PublishRequest) ([]Result, []error) {
	results, errs := make([]Result, len(ps)), make([]error, len(ps))
	if len(ps) == 1 || b.layout.cluster || b.replicaTimeout > 0 {
		for i, p := range ps {
			results[i], errs[i] = b.Publish(ctx, p)
		}
		return results, errs
	}
	calls := make([]struct {
		keys []string
		args []any
	}, len(ps))
	for i, p := range ps {
		calls[i].keys, calls[i].args = b.publishCall(p)
	}
	rdb := b.batchClient()
	pipe := rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(ps))
	for i, c := range calls {
		cmds[i] = publishScript.EvalSha(ctx, pipe, c.keys, c.args...)
	}
	_, _ = pipe.Exec(ctx) // each command's own error is read below
	first := -1
	retry := true
	for i, cmd := range cmds {
		noScript := redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT")
		switch {
		case noScript && first < 0:
			first = i
		case !noScript && first >= 0 && cmd.Err() == nil:
			retry = false // stored after a refused one: running those now would reorder
		}
	}
	if first >= 0 && retry {
		pipe := rdb.Pipeline()
		for i := first; i < len(cmds); i++ {
			if redis.HasErrorPrefix(cmds[i].Err(), "NOSCRIPT") {
				cmds[i] = publishScript.Eval(ctx, pipe, calls[i].keys, calls[i].args...)
			}
		}
		_, _ = pipe.Exec(ctx)
	}
	for i, cmd := range cmds {
		results[i], errs[i] = scriptResult(cmd)
	}
	return results, errs
}

// The batch's connection pool. On a link that drops everything (a
// partition, a blackholed Redis) go-redis took far longer to fail a pipeline
// than one command: with the lan profile (1 s read timeout, one retry) one
// EVALSHA failed after 1.0 s, a pipeline of two after 4.1 s, its retry
// opening another connection, whose handshake timed out too, and sending
// the batch again. So a batch ran into its deadline (3 × the read timeout)
// where one publish failed after one read timeout (now: one on the batch's
// old connection, two on a new one, its handshake and then the batch). A
// client that publishes steadily then heard nothing from its gateway for
// that long while Redis was unreachable (each frame it sends after its
// publishes is answered after theirs), gave the connection up for dead and
// failed over, where with --publish-window 1 it stayed and resumed (the
// chaos spec "fills the gap after its Redis link is blackholed longer than
// every timeout"). So batches go on a client of their own, made from the
// broker's options with go-redis's retries turned off: a batch is sent once.
// A pooled connection that died while idle (Redis restarted) is found and
// replaced by go-redis before it is used, so that case needs no retry.

// batchClient is the client PublishBatch pipelines on: the broker's own
// options with no go-redis retries, made at the first batch (a broker that
// never batches, a bridge's, opens no second pool); the broker's client
// itself when that is not a *redis.Client.
func (b *Broker) batchClient() redis.Cmdable {
	b.batchOnce.Do(func() {
		c, ok := b.rdb.(*redis.Client)
		if !ok {
			return
		}
		o := *c.Options()
		o.MaxRetries = -1
		// NewClient set these two for the client it made (its push
		// processor, its maintenance settings): the new client makes its own.
		o.PushNotificationProcessor = nil
		if m := o.MaintNotificationsConfig; m != nil {
			mc := *m
			o.MaintNotificationsConfig = &mc
		}
		b.batch = redis.NewClient(&o)
	})
	if b.batch == nil {
		return b.rdb
	}
	return b.batch
}

// Close closes the connections the broker opened itself (PublishBatch's);
// the client it was given stays its owner's to close.
func (b *Broker) Close() error {
	b.batchOnce.Do(func() {}) // no batch client is made after Close
	if b.batch == nil {
		return nil
	}
	return b.batch.Close()
}
