package check

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Result is what Check found. It is JSON-serialisable (it goes into
// report.json) and Metric reads its numbers by name, also from a Result
// decoded back from JSON.
type Result struct {
	Run  string `json:"run"`
	Seed int64  `json:"seed"`
	// Duration is the t of the end record in seconds (of the last record
	// when the history has no end record: then Ended is false).
	Duration float64 `json:"duration_seconds"`
	Ended    bool    `json:"ended"`

	Counts Counts `json:"counts"`
	// RecoveredFalse counts the subscribed frames with recovered:false the
	// clients received, by reason ("" when none was given), so that a spec
	// can say which reasons its faults may cause.
	RecoveredFalse map[string]int `json:"recovered_false,omitempty"`
	// Examples holds up to Options.Examples examples per finding, keyed by
	// the finding's metric name (lost, duplicated, reordered, gaps,
	// silent_epoch_changes, region_order, unrecoverable_announced,
	// unacked, failover_unfinished), each saying who, what, when and why.
	Examples map[string][]Example `json:"examples,omitempty"`

	Latency  Latency            `json:"latency"`
	Failover Failover           `json:"failover"`
	Lag      map[string]LinkLag `json:"replication_lag,omitempty"` // by link "from->region"
	Faults   []FaultWindow      `json:"faults"`
	Timeline Timeline           `json:"timeline"`
}

// Counts are the findings, counted. docs/checker.md defines each.
type Counts struct {
	Published              int `json:"published"`               // acked events
	Unacked                int `json:"unacked"`                 // publishes (client, client msg id) never acked
	Retried                int `json:"retried"`                 // publish frames resent with an id the client had sent before (G4's retries)
	Delivered              int `json:"delivered"`               // first deliveries of an event to a client
	Lost                   int `json:"lost"`                    // (client, event) expected and never received, not announced
	UnrecoverableAnnounced int `json:"unrecoverable_announced"` // expected, never received, announced by recovered:false
	Duplicated             int `json:"duplicated"`              // extra copies of an event a client already had
	// LiveRedeliveries: second copies of an event a client got after it
	// left the room and subscribed again live (no since), following that
	// answer's position: the client did not say it had them, and a region
	// behind on their origin delivers them live. Not a violation (G3's
	// edge, docs/guarantees.md).
	LiveRedeliveries      int `json:"live_redeliveries"`
	Reordered             int `json:"reordered"`               // oseq not above the previous of its (room, origin, epoch)
	Gaps                  int `json:"gaps"`                    // oseq jumped with no recovered:false announcing it
	AnnouncedGaps         int `json:"announced_gaps"`          // oseq jumped after a recovered:false
	SilentEpochChanges    int `json:"silent_epoch_changes"`    // a new epoch with no recovered:false before it
	AnnouncedEpochChanges int `json:"announced_epoch_changes"` // a new epoch after a recovered:false
	RegionOrder           int `json:"region_order"`            // messages out of the region's order (G1)
	Disconnects           int `json:"disconnects"`             // disconnected records
	Failovers             int `json:"failovers"`               // failovers completed (a time measured)
	FailoverUnfinished    int `json:"failover_unfinished"`     // failovers not completed by the end
	// Leaked: messages of a room received on a connection to a region the
	// event must not reach (a region-local room's event outside its region,
	// G7).
	Leaked int `json:"leaked"`
	// UnwarrantedRecoveredFalse: recovered:false answers the region had no
	// cause for (it held what the client asked for, by the answer's own
	// positions and epochs, or the reason cannot apply to the room).
	UnwarrantedRecoveredFalse int `json:"unwarranted_recovered_false"`
	// EndedDisconnected: clients with an obligation at the end whose last
	// connection was down (they gave up, or never came back).
	EndedDisconnected int `json:"ended_disconnected"`
	// NotResumed: subscribes without since for a room the client still
	// covered, sent on a new connection after a disconnect (a resume owed
	// and not asked for).
	NotResumed int `json:"not_resumed"`

	// Lab counts: what lab/run found in the lab itself after the quiesce
	// (lab/invariant), for breakages no client sees on the wire. Zero in a
	// Result of a history alone.

	// HistoryDuplicates: entries of a room's stored history repeating an
	// event it already holds (G3, G7).
	HistoryDuplicates int `json:"history_duplicates"`
	// OutboxEchoes: outbox entries of another origin than the outbox's
	// region (G7's loop prevention).
	OutboxEchoes int `json:"outbox_echoes"`
	// PatternSubscriptions: pattern subscriptions open on a region's Redis
	// with targeted gateways (G9).
	PatternSubscriptions int `json:"pattern_subscriptions"`
	// ExtraEvents: events the regions created beyond one per publish the
	// clients made, where the region could have known better: a second
	// event of a publish (same room, sender, client message id) made by a
	// region whose history already held one; and at least stored
	// own-origin events − retries_overtaken − published − unacked (G4).
	ExtraEvents int `json:"extra_events"`
	// RetriesOvertaken: second events of a publish made by a region whose
	// history did not hold the first: the retry failed over to it before
	// the bridge carried the first attempt's event there (or the region
	// lost its data). G4's stated edge, counted; not a violation.
	RetriesOvertaken int `json:"retries_overtaken"`
	// SessionsNotFenced: the fence probe's session, taken over in another
	// region, still served by the region that held it after every fault
	// healed (G11): 1 or 0.
	SessionsNotFenced int `json:"sessions_not_fenced"`
	// SessionsFenced: 1 when the fence probe's holder was closed with 4003
	// after the takeover (G11 exercised and held), else 0.
	SessionsFenced int `json:"sessions_fenced"`
	// SlowConsumersNotCut: the slow probe's connection, which read nothing
	// while its room was flooded past what the gateway may hold for it,
	// was not closed with 4001, and the gateway held the others up or
	// gave it every message (G10): 1 or 0.
	SlowConsumersNotCut int `json:"slow_consumers_not_cut"`
	// SlowConsumersCut: 1 when the slow probe's connection was closed with
	// 4001 (G10 exercised and held), else 0.
	SlowConsumersCut int `json:"slow_consumers_cut"`
	// ReplicatedAcksLost: events acked by a region whose gateways run
	// --durability replicated (topology redis.durability) that the
	// region's own history no longer holds once the run quiesced: an ack
	// given before a replica had the event, which a failover then took
	// (G12's edge, which replicated durability closes). Announced or not.
	ReplicatedAcksLost int `json:"replicated_acks_lost"`
}

// Violation is a count that breaks a guarantee when above zero.
type Violation struct {
	Name      string `json:"name"`      // the metric name, e.g. "lost"
	Guarantee string `json:"guarantee"` // e.g. "G2"
	Count     int    `json:"count"`
}

// violationCounts are the counts that break a guarantee when above zero,
// in the order a release manager reads them.
var violationCounts = []struct{ name, guarantee string }{
	{"lost", "G5–G8"}, {"leaked", "G7"}, {"duplicated", "G3"}, {"reordered", "G2"}, {"gaps", "G2"},
	{"silent_epoch_changes", "G6"}, {"region_order", "G1"}, {"unwarranted_recovered_false", "G6"},
	{"not_resumed", "G6"}, {"ended_disconnected", "G8"}, {"failover_unfinished", "G8"},
	{"history_duplicates", "G3"}, {"extra_events", "G4"}, {"outbox_echoes", "G7"}, {"pattern_subscriptions", "G9"},
	{"sessions_not_fenced", "G11"}, {"slow_consumers_not_cut", "G10"}, {"replicated_acks_lost", "G12"},
}

// ViolationNames lists the counts Violations looks at.
func ViolationNames() []string {
	names := make([]string, len(violationCounts))
	for i, v := range violationCounts {
		names[i] = v.name
	}
	return names
}

// Violations returns the counts of r that break a guarantee, those above
// zero only, in a fixed order: a run is clean when it returns none.
func (r *Result) Violations() []Violation {
	var out []Violation
	for _, v := range violationCounts {
		if n, _ := r.count(v.name); n > 0 {
			out = append(out, Violation{Name: v.name, Guarantee: v.guarantee, Count: int(n)})
		}
	}
	return out
}

// Example is one instance of a finding, in words (Text) and in fields.
type Example struct {
	Client string  `json:"client,omitempty"`
	Room   string  `json:"room,omitempty"`
	Event  string  `json:"event,omitempty"`
	T      float64 `json:"t"`               // seconds since the start: when it happened or was due
	Value  float64 `json:"value,omitempty"` // a duration in seconds, where one is measured
	Text   string  `json:"text"`            // who, what, when and why
}

// Percentiles summarise a set of durations, in seconds (nearest rank: the
// p-th percentile is the smallest value with at least p% of the values at
// or below it).
type Percentiles struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
	// CDF holds the 0th, 1st, … 100th percentiles (101 values) for the
	// report's plots; empty when there is no value.
	CDF []float64 `json:"cdf,omitempty"`
}

// Latency is publish → delivery time: for each first delivery of an acked
// event to a client, the receive t minus the event's publish t.
type Latency struct {
	All         Percentiles `json:"all"`
	IntraRegion Percentiles `json:"intra_region"` // origin == the receiving connection's region
	CrossRegion Percentiles `json:"cross_region"`
	// Pairs: by "origin->receiver" (ordered), Links: by "a<->b" (a < b,
	// both directions), Regions: intra-region by region.
	Pairs   map[string]Percentiles `json:"pairs,omitempty"`
	Links   map[string]Percentiles `json:"links,omitempty"`
	Regions map[string]Percentiles `json:"regions,omitempty"`
}

// Failover is G8 measured: per client, the time from a disconnect until the
// client was connected again and had a subscribed frame for every room it
// covered at the disconnect.
type Failover struct {
	Percentiles
	Worst []Example `json:"worst,omitempty"` // the longest, longest first
}

// LinkLag is the replication lag of one federation link: Region applying
// the events that originate in From.
type LinkLag struct {
	Region       string  `json:"region"`
	From         string  `json:"from"`
	Samples      int     `json:"samples"`
	Max          float64 `json:"max"` // seconds
	P99          float64 `json:"p99"`
	WarnSeconds  float64 `json:"warn_seconds"`  // time spent in state warn
	AlertSeconds float64 `json:"alert_seconds"` // in alert
	DownSeconds  float64 `json:"down_seconds"`  // in down
}

// FaultWindow is one fault, from inject to heal (times in seconds).
type FaultWindow struct {
	ID     string            `json:"id"`
	Kind   string            `json:"kind"`
	Target string            `json:"target"`
	Args   map[string]string `json:"args,omitempty"`
	Inject float64           `json:"inject"`
	Heal   float64           `json:"heal"`   // the end of the run when not healed
	Healed bool              `json:"healed"` // false: still active at the end
}

// Timeline is the run over time, for the report's chart.
type Timeline struct {
	BucketSeconds float64 `json:"bucket_seconds"`
	// Deliveries: by receiving region, first deliveries per bucket.
	Deliveries map[string][]int `json:"deliveries,omitempty"`
	// Lag: by link "from->region", the highest sample of each bucket that
	// has one.
	Lag map[string][]LagPoint `json:"lag,omitempty"`
}

// LagPoint is one lag sample on the timeline.
type LagPoint struct {
	T       float64 `json:"t"`
	Seconds float64 `json:"seconds"`
	State   string  `json:"state,omitempty"`
}

// Metric returns the number an expectation names, e.g. ("lost"),
// ("cross_region_p99", "us-east", "eu-west"); false when the name or the
// labels are unknown or the metric has no value (see Value for why).
func (r *Result) Metric(name string, labels ...string) (float64, bool) {
	v, err := r.Value(name, labels...)
	return v, err == nil
}

// Metrics lists the metric names Value knows, with their labels.
var Metrics = []string{
	"published", "unacked", "retried", "delivered", "lost", "unrecoverable_announced", "duplicated", "live_redeliveries", "reordered", "gaps",
	"announced_gaps", "silent_epoch_changes", "announced_epoch_changes", "region_order", "disconnects",
	"failovers", "failover_unfinished", "leaked", "unwarranted_recovered_false", "ended_disconnected", "not_resumed",
	"history_duplicates", "extra_events", "retries_overtaken", "outbox_echoes", "pattern_subscriptions",
	"sessions_not_fenced", "sessions_fenced", "slow_consumers_not_cut", "slow_consumers_cut", "replicated_acks_lost", "duration",
	"recovered_false", "recovered_false{reason}",
	"latency_{p50,p90,p99,max}", "latency_{p50,p90,p99,max}{origin,receiver}",
	"intra_region_{p50,p90,p99,max}", "intra_region_{p50,p90,p99,max}{region}",
	"cross_region_{p50,p90,p99,max}", "cross_region_{p50,p90,p99,max}{a,b}",
	"failover_{p50,p90,p99,max}",
	"replication_lag_max", "replication_lag_max{region,from}", "replication_lag_p99", "replication_lag_p99{region,from}",
	"lag_warn_seconds", "lag_warn_seconds{region,from}", "lag_alert_seconds", "lag_alert_seconds{region,from}",
}

// Value returns the number an expectation names, or an error saying why
// there is none: an unknown name, labels the metric does not take or that
// name nothing in this run, or no samples (a percentile of nothing). Counts
// take no labels; durations are in seconds. docs/checker.md lists them.
func (r *Result) Value(name string, labels ...string) (float64, error) {
	if r == nil {
		return 0, fmt.Errorf("no result")
	}
	if v, ok := r.count(name); ok {
		if len(labels) > 0 {
			return 0, fmt.Errorf("%s takes no labels", name)
		}
		return v, nil
	}
	base, stat, _ := cutLast(name)
	switch base {
	case "latency", "intra_region", "cross_region", "failover":
		if !validStat(stat) {
			break
		}
		p, err := r.percentiles(base, labels)
		if err != nil {
			return 0, err
		}
		if p.Count == 0 {
			return 0, fmt.Errorf("%s has no samples", describe(name, labels))
		}
		return p.stat(stat), nil
	}
	switch name {
	case "replication_lag_max", "replication_lag_p99", "lag_warn_seconds", "lag_alert_seconds":
		return r.lag(name, labels)
	case "recovered_false":
		return r.recoveredFalse(labels)
	}
	return 0, fmt.Errorf("unknown metric %q (known: %s)", name, strings.Join(Metrics, ", "))
}

func (r *Result) count(name string) (float64, bool) {
	c := r.Counts
	switch name {
	case "published":
		return float64(c.Published), true
	case "unacked":
		return float64(c.Unacked), true
	case "retried":
		return float64(c.Retried), true
	case "delivered":
		return float64(c.Delivered), true
	case "lost":
		return float64(c.Lost), true
	case "unrecoverable_announced":
		return float64(c.UnrecoverableAnnounced), true
	case "duplicated":
		return float64(c.Duplicated), true
	case "reordered":
		return float64(c.Reordered), true
	case "gaps":
		return float64(c.Gaps), true
	case "announced_gaps":
		return float64(c.AnnouncedGaps), true
	case "silent_epoch_changes":
		return float64(c.SilentEpochChanges), true
	case "announced_epoch_changes":
		return float64(c.AnnouncedEpochChanges), true
	case "region_order":
		return float64(c.RegionOrder), true
	case "disconnects":
		return float64(c.Disconnects), true
	case "failovers":
		return float64(c.Failovers), true
	case "failover_unfinished":
		return float64(c.FailoverUnfinished), true
	case "leaked":
		return float64(c.Leaked), true
	case "unwarranted_recovered_false":
		return float64(c.UnwarrantedRecoveredFalse), true
	case "ended_disconnected":
		return float64(c.EndedDisconnected), true
	case "not_resumed":
		return float64(c.NotResumed), true
	case "history_duplicates":
		return float64(c.HistoryDuplicates), true
	case "outbox_echoes":
		return float64(c.OutboxEchoes), true
	case "pattern_subscriptions":
		return float64(c.PatternSubscriptions), true
	case "extra_events":
		return float64(c.ExtraEvents), true
	case "retries_overtaken":
		return float64(c.RetriesOvertaken), true
	case "live_redeliveries":
		return float64(c.LiveRedeliveries), true
	case "sessions_not_fenced":
		return float64(c.SessionsNotFenced), true
	case "sessions_fenced":
		return float64(c.SessionsFenced), true
	case "slow_consumers_not_cut":
		return float64(c.SlowConsumersNotCut), true
	case "slow_consumers_cut":
		return float64(c.SlowConsumersCut), true
	case "replicated_acks_lost":
		return float64(c.ReplicatedAcksLost), true
	case "duration":
		return r.Duration, true
	}
	return 0, false
}

// recoveredFalse is the number of recovered:false frames, of one reason or
// of all.
func (r *Result) recoveredFalse(labels []string) (float64, error) {
	switch len(labels) {
	case 0:
		n := 0
		for _, v := range r.RecoveredFalse {
			n += v
		}
		return float64(n), nil
	case 1:
		return float64(r.RecoveredFalse[labels[0]]), nil
	}
	return 0, fmt.Errorf("recovered_false takes no labels or {reason}, not %d label(s)", len(labels))
}

func cutLast(name string) (base, stat string, ok bool) {
	i := strings.LastIndexByte(name, '_')
	if i < 0 {
		return name, "", false
	}
	return name[:i], name[i+1:], true
}

func validStat(s string) bool { return s == "p50" || s == "p90" || s == "p99" || s == "max" }

func (p Percentiles) stat(s string) float64 {
	switch s {
	case "p50":
		return p.P50
	case "p90":
		return p.P90
	case "p99":
		return p.P99
	}
	return p.Max
}

func describe(name string, labels []string) string {
	if len(labels) == 0 {
		return name
	}
	return name + "{" + strings.Join(labels, ",") + "}"
}

func (r *Result) percentiles(base string, labels []string) (Percentiles, error) {
	l := r.Latency
	switch {
	case base == "failover" && len(labels) == 0:
		return r.Failover.Percentiles, nil
	case base == "latency" && len(labels) == 0:
		return l.All, nil
	case base == "latency" && len(labels) == 2:
		if p, ok := l.Pairs[labels[0]+"->"+labels[1]]; ok {
			return p, nil
		}
		return Percentiles{}, fmt.Errorf("no deliveries from %s to %s (known pairs: %s)", labels[0], labels[1], keys(l.Pairs))
	case base == "intra_region" && len(labels) == 0:
		return l.IntraRegion, nil
	case base == "intra_region" && len(labels) == 1:
		if p, ok := l.Regions[labels[0]]; ok {
			return p, nil
		}
		return Percentiles{}, fmt.Errorf("no intra-region deliveries in %s (known: %s)", labels[0], keys(l.Regions))
	case base == "cross_region" && len(labels) == 0:
		return l.CrossRegion, nil
	case base == "cross_region" && len(labels) == 2:
		if labels[0] == labels[1] {
			return Percentiles{}, fmt.Errorf("cross_region{%s,%s}: name two different regions (intra_region{%s} is within one)",
				labels[0], labels[1], labels[0])
		}
		if p, ok := l.Links[linkName(labels[0], labels[1])]; ok {
			return p, nil
		}
		return Percentiles{}, fmt.Errorf("no deliveries between %s and %s (known links: %s)", labels[0], labels[1], keys(l.Links))
	}
	want := map[string]string{"failover": "no labels", "latency": "no labels or {origin,receiver}",
		"intra_region": "no labels or {region}", "cross_region": "no labels or {a,b}"}[base]
	return Percentiles{}, fmt.Errorf("%s_* takes %s, not %d label(s)", base, want, len(labels))
}

func (r *Result) lag(name string, labels []string) (float64, error) {
	pick := func(l LinkLag) float64 {
		switch name {
		case "replication_lag_max":
			return l.Max
		case "replication_lag_p99":
			return l.P99
		case "lag_warn_seconds":
			return l.WarnSeconds
		}
		return l.AlertSeconds
	}
	switch len(labels) {
	case 0:
		if len(r.Lag) == 0 {
			return 0, fmt.Errorf("%s: the history has no lag samples", name)
		}
		v := math.Inf(-1)
		for _, l := range r.Lag {
			v = max(v, pick(l))
		}
		return v, nil
	case 2:
		l, ok := r.Lag[labels[1]+"->"+labels[0]]
		if !ok {
			return 0, fmt.Errorf("%s{%s,%s}: no lag samples of %s applying events from %s (known links from->region: %s)",
				name, labels[0], labels[1], labels[0], labels[1], keys(r.Lag))
		}
		return pick(l), nil
	}
	return 0, fmt.Errorf("%s takes no labels or {region,from}, not %d label(s)", name, len(labels))
}

func linkName(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return a + "<->" + b
}

func keys[V any](m map[string]V) string {
	if len(m) == 0 {
		return "none"
	}
	k := make([]string, 0, len(m))
	for n := range m {
		k = append(k, n)
	}
	slices.Sort(k)
	return strings.Join(k, ", ")
}
