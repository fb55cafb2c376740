package gateway

import (
	"context"
	"sync"
	"time"

	"github.com/geolab/geolab/gateway/broker"
	"github.com/geolab/geolab/gateway/protocol"
)

// The publish pipeline of a connection (--publish-window > 1). Each publish
// costs a Redis round trip (publish.lua). Answered one at a time, before
// the connection's next frame is read, a publisher can do no more than one
// publish per round trip: on a loaded machine, where a round trip takes tens
// of milliseconds, it falls behind its rate, its frames wait unread in the
// socket, and every subscriber's latency (counted from the publisher's send)
// grows though no queue is full (BENCHMARKS.md, issue 16).
//
// So the reader goes on reading while earlier publishes wait for Redis, up
// to the window, and hands them, in the order read, to the connection's
// publisher goroutine (started at the first publish: a subscriber-only
// connection never has one). That goroutine takes everything queued, up to
// the window, and sends it in one pipeline (Broker.PublishBatch): one round
// trip for the batch, one batch in flight per connection. It then sends the
// answers (acks, or the error frames of publishes refused before Redis) in
// the order the publishes were read.
//
// Order (G2, per (room, origin) oseq in the order each client sent): the
// reader queues publishes in the order their frames came; the publisher
// takes them in that order, and the next batch leaves only once the last
// one is answered, so batches never overtake each other; within a batch
// PublishBatch stores the publishes in slice order (one Redis connection
// runs a pipeline in order; on a cluster they go one at a time; its comment
// says why, and how errors and NOSCRIPT keep the order of what is stored).
// Publishes of one connection therefore get their oseqs in the order the
// client sent them, as with a window of 1. Idempotency (G4) is publish.lua's
// and does not change: a retry in a later batch, or in the same one after
// its first attempt, finds the first attempt's record and answers "dup".
//
// Any other frame (subscribe, unsubscribe, ping, a frame that does not
// decode) waits until every publish read before it is answered
// (publishesAnswered): its answer, and what it does, come after theirs as
// they did with a window of 1. Only runs of publishes are pipelined.

// publishJob is one publish read and not yet answered.
type publishJob struct {
	frame   *protocol.ClientFrame
	req     broker.PublishRequest
	refusal []byte    // the error frame of a publish refused before Redis; nil: publish req
	read    time.Time // when the frame was read
}

// publishPipeline is a connection's publishes in flight; the reader
// goroutine alone queues them and stops the publisher.
type publishPipeline struct {
	queue   chan *publishJob // read and not yet taken by the publisher, in the order read
	slots   chan struct{}    // one per publish read and not yet answered: at most the window
	pending sync.WaitGroup   // publishes read and not yet answered
	done    chan struct{}    // closed when the publisher goroutine ended
}

// enqueuePublish hands a checked publish to the publisher goroutine,
// starting it at the first one, and waits while the window is full.
func (c *conn) enqueuePublish(j *publishJob) {
	p := &c.pub
	if p.queue == nil {
		w := c.srv.cfg.PublishWindow
		p.queue, p.slots, p.done = make(chan *publishJob, w), make(chan struct{}, w), make(chan struct{})
		go c.publishLoop()
	}
	p.slots <- struct{}{} // the publisher frees a slot per publish answered, whatever happens
	p.pending.Add(1)
	p.queue <- j // never blocks: the queue holds as many as there are slots
}

// publishesAnswered waits until every publish read so far is answered.
func (c *conn) publishesAnswered() {
	c.pub.pending.Wait()
}

// stopPublishing ends the publisher goroutine once the connection's reader
// is done, and waits for it: what it holds is still published (its answers
// go nowhere), within the Redis timeouts of its batches.
func (c *conn) stopPublishing() {
	if c.pub.queue == nil {
		return
	}
	close(c.pub.queue)
	<-c.pub.done
}

// publishLoop is the connection's publisher goroutine: one batch in flight
// at a time, answers in the order read.
func (c *conn) publishLoop() {
	p := &c.pub
	defer close(p.done)
	w := c.srv.cfg.PublishWindow
	batch := make([]*publishJob, 0, w)
	reqs := make([]broker.PublishRequest, 0, w)
	for first := range p.queue {
		batch = append(batch[:0], first)
	more:
		for len(batch) < w {
			select {
			case j, ok := <-p.queue:
				if !ok {
					break more
				}
				batch = append(batch, j)
			default:
				break more
			}
		}
		// Published even when the connection is closed by now: a client
		// may send its publish and close at once, and what the reader read
		// was published before the close with a window of 1 too.
		reqs = reqs[:0]
		for _, j := range batch {
			if j.refusal == nil {
				reqs = append(reqs, j.req)
			}
		}
		var results []broker.Result
		var errs []error
		if len(reqs) > 0 {
			c.srv.m.publishBatches.Inc()
			// Under --durability replicated each publish of the batch waits
			// for its replica in turn (Broker.PublishBatch).
			ctx, cancel := context.WithTimeout(context.Background(), 3*c.srv.cfg.RedisLink.ReadTimeout+time.Duration(len(reqs))*c.srv.broker.ReplicaTimeout())
			results, errs = c.srv.broker.PublishBatch(ctx, reqs)
			cancel()
		}
		k := 0
		for _, j := range batch {
			if j.refusal != nil {
				c.send(j.refusal)
				continue
			}
			c.send(c.publishAnswer(j.frame, j.read, j.req.Seen, results[k], errs[k]))
			k++
		}
		for i := range batch {
			batch[i] = nil
			<-p.slots
			p.pending.Done()
		}
	}
}
