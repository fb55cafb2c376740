// Package faulty switches on deliberate breakages (mutants) of the gateway
// and the bridge, so that a spec can be shown to fail when the guarantee it
// proves is broken. docs/mutants.md lists them and says where each lives.
//
// A mutant exists only in a binary built with -tags faulty, and is on only
// when its name is in the comma-separated GEOLAB_FAULTY of that process:
//
//	go build -tags faulty -o bin/geolab-faulty ./cmd/geolab
//	GEOLAB_FAULTY=nogapfill GEOLAB_BIN=bin/geolab-faulty ...
//
// In every other build On is the constant false: the compiler drops the
// broken branches and the product binary carries none of them, whatever its
// environment says. (`go version -m BINARY` shows -tags=faulty when a binary
// can carry mutants.)
package faulty

// Names are the mutants a faulty build knows; GEOLAB_FAULTY naming anything
// else stops a faulty binary at start, so that a typo cannot pass for a
// mutant the specs failed to catch.
var Names = []string{
	"nogapfill",          // G5: no gap fill from history after the pub/sub link returns
	"noresume",           // G6: a resume answers recovered:true and replays nothing
	"goroutinepermsg",    // G1/G2: a goroutine per message hands frames to client queues
	"psubscribe",         // G9: PSUBSCRIBE of every room whatever --subscribe-mode says
	"noapplydedup",       // G3/G7: apply is not idempotent; the checkpoint lags behind
	"echo",               // G7: the bridge forwards events it applied into its own outbox
	"dupwire",            // G3: every live message is written twice
	"nopubdedup",         // G4: no idempotency record for a publish
	"noslowcut",          // G10: fan-out blocks on a full client queue instead of cutting it
	"nofence",            // G11: a region that lost a session keeps its connections
	"noepoch",            // G6: a restarted sequence keeps the same epoch
	"noshardresubscribe", // G12: a room Redis dropped from its shard is resubscribed but never refilled nor let live
	"nowait",             // G6/G12: --durability replicated acks without waiting for a replica
}
