// Package client is the Go client of geolab's wire protocol v1: the one the
// lab's workload and the specs use to drive thousands of simulated users, and
// the one a service can embed to talk to a geolab gateway.
//
//	caller ── Publish/Subscribe ──▶ writer ──▶ gateway (/ws)
//	caller ◀── OnMessage/OnSubscribed/OnState ── dispatcher ◀── backstop ◀── reader ◀── gateway
//	                                 OnFrame ◀── every raw frame, both ways
//
// A Client keeps one WebSocket connection at a time and replaces it when it
// is lost, for as long as the context given to Dial lives and Close has not
// been called. What it promises:
//
// Publish is at-least-once with idempotent retries. A publish is retried,
// with the same client message id and the very same bytes, after every
// reconnect and after the gateway answers "unavailable", "rate_limited" or
// "internal", until its ack arrives or its context ends. The gateway
// deduplicates retries by (sender, id) within its dedup window (G4), so a
// retried publish yields one event and the ack of the first attempt. A
// Publish whose context ended may still have been published: retrying it
// with the same id is safe, publishing the same data under a new id is not.
//
// Subscriptions survive reconnects, with resume. For every room it is in the
// client tracks, per origin region, the last oseq it delivered and the epoch
// of that origin's sequence. After a reconnect it resubscribes each room with
// those as since/epochs (an empty since, not none, for a room that has had no
// message yet) and the gateway replays exactly what was missed (G6):
// Subscribed.Recovered is true, Missed messages follow, then live traffic.
//
// A caller may also choose its positions. SubscribeFrom subscribes from
// the since/epochs it is given instead of the tracked ones: a nil since is a
// live-only subscribe (a fresh join, even of a room the client was in
// before), since {} asks for the room's whole retained history in the
// gateway's region. Reconnect drops the connection abruptly, as a phone
// switching networks does; the client then reconnects and resumes as after
// any lost connection.
//
// Recovered false means a gap the gateway could not fill: its history no
// longer reaches back to the client's position, an origin's sequence
// restarted under a new epoch, or (sent unasked, reason epoch_changed or
// history_trimmed) the gateway lost events it had not delivered. Nothing is
// replayed for it. The caller must repair its state from elsewhere (a
// snapshot, a database): the messages in the gap will never arrive through
// this client. The client takes the frame's position and epochs as its new
// ones, so that what follows is counted against them and no gap is reported
// twice. Every such frame is reported through OnSubscribed: a gap is never
// silent.
//
// The dedup backstop is not the mechanism. Duplicates are removed by the
// gateway (G3); the client only keeps a last line of defence, per room and
// origin: a message at or below the tracked oseq of the same epoch is dropped
// and counted (Stats.Duplicates), a message that skips oseqs is delivered and
// counted (Stats.Gaps), a message of a new epoch starts that origin over
// (Stats.EpochChanges). Tests read these counters to see that the gateway
// did its job: on a healthy system Duplicates and Gaps stay 0. OnFrame sees
// every frame before the backstop, so the lab's history records what the
// wire carried, duplicates included.
//
// Close codes decide what happens when a connection ends: a code for which
// protocol.Reconnectable is true, a read error or a heartbeat timeout makes
// the client reconnect, with exponential backoff and full jitter, through
// Options.Resolve when it is set; any other close code (4500–4999, 1000 sent
// by the gateway, 1009) ends the client, and every pending call fails with a
// *CloseError naming the code.
//
// Callbacks other than OnFrame run on one dispatcher goroutine, in the order
// the events happened, and never under the client's locks: a callback may
// call Publish, Subscribe, Unsubscribe or Close. OnFrame runs on the reader
// and writer goroutines and must be cheap and must not call Close.
package client
