package report

import (
	"slices"

	"github.com/geolab/geolab/lab/check"
)

// maxExamples is how many examples of one finding a report shows.
const maxExamples = 10

// guarantee is the checker's counts that bear on one guarantee (docs/design.md
// G1–G11), with the examples of its findings.
type guarantee struct {
	ID, Title string
	Says      string // the guarantee in one sentence
	Counts    []count
	Findings  []finding // those with at least one example
	// Exercised: the run did what the guarantee is about (published,
	// delivered, disconnected); if not, "held" would say nothing.
	Exercised bool
}

// count is one of check.Counts. Bad marks a finding that breaks the
// guarantee when it is above zero; the others are context (how much was
// published) or findings the guarantee allows (announced gaps).
type count struct {
	Name  string
	Value int
	Bad   bool
}

// finding is a finding's examples: the first maxExamples of Total. Bad as
// in count.
type finding struct {
	Name     string
	Total    int
	Bad      bool
	Examples []check.Example
}

// guarantees groups r's counts and examples by guarantee, in the order a
// release manager reads them: loss first. Examples under a name no group
// knows come last, under "Other findings", so that none is hidden.
func guarantees(r *check.Result) []guarantee {
	c := r.Counts
	gs := []guarantee{
		{ID: "G5–G7", Title: "Nothing lost silently",
			Says: "Every acked event reaches every client subscribed to its room, through disconnects, or the client is told with a recovered:false that covers that event.",
			Counts: []count{{"published", c.Published, false}, {"delivered", c.Delivered, false},
				{"lost", c.Lost, true}, {"unrecoverable_announced", c.UnrecoverableAnnounced, false},
				{"unwarranted_recovered_false", c.UnwarrantedRecoveredFalse, true}, {"not_resumed", c.NotResumed, true},
				{"unacked", c.Unacked, false}, {"replicated_acks_lost", c.ReplicatedAcksLost, true}},
			Exercised: c.Published > 0},
		{ID: "G7", Title: "Region scoping",
			Says:      "A region-local room's events never leave their region; a federated room's reach only regions that federate it.",
			Counts:    []count{{"leaked", c.Leaked, true}, {"outbox_echoes", c.OutboxEchoes, true}},
			Exercised: c.Delivered > 0},
		{ID: "G3", Title: "No duplicates",
			Says:      "A client never receives the same event id twice for a room. A client that left the room and subscribed again without since, while its region was behind, may be given again live what it had: counted as live_redeliveries.",
			Counts:    []count{{"duplicated", c.Duplicated, true}, {"history_duplicates", c.HistoryDuplicates, true}, {"live_redeliveries", c.LiveRedeliveries, false}},
			Exercised: c.Delivered > 0},
		{ID: "G4", Title: "Idempotent publish",
			Says:      "A publish retried with the same client message id yields one event and the same ack, in its region and in every region its event has reached: no region makes a second event of a publish it holds. A retry that fails over to a region before its first attempt's event is counted as retries_overtaken.",
			Counts:    []count{{"retried", c.Retried, false}, {"extra_events", c.ExtraEvents, true}, {"retries_overtaken", c.RetriesOvertaken, false}},
			Exercised: c.Retried > 0},
		{ID: "G2", Title: "Per-origin FIFO",
			Says: "For each room and origin, oseq rises by exactly 1 at every subscriber; a jump is announced.",
			Counts: []count{{"reordered", c.Reordered, true}, {"gaps", c.Gaps, true},
				{"announced_gaps", c.AnnouncedGaps, false}, {"silent_epoch_changes", c.SilentEpochChanges, true},
				{"announced_epoch_changes", c.AnnouncedEpochChanges, false}},
			Exercised: c.Delivered > 0},
		{ID: "G1", Title: "Region order",
			Says:      "All subscribers of a room in one region receive its messages in the same order.",
			Counts:    []count{{"region_order", c.RegionOrder, true}},
			Exercised: c.Delivered > 0},
		{ID: "G8", Title: "Region failover",
			Says: "A client whose region dies reaches a healthy region and resumes its rooms within the bound.",
			Counts: []count{{"disconnects", c.Disconnects, false}, {"failovers", c.Failovers, false},
				{"failover_unfinished", c.FailoverUnfinished, true}, {"ended_disconnected", c.EndedDisconnected, true}},
			Exercised: c.Disconnects > 0 || c.Failovers > 0 || c.FailoverUnfinished > 0},
		{ID: "G11", Title: "Session ownership",
			Says:      "A session is owned by one region at a time: the fence probe's session, taken over in another region, is closed with 4003 where it was held.",
			Counts:    []count{{"sessions_fenced", c.SessionsFenced, false}, {"sessions_not_fenced", c.SessionsNotFenced, true}},
			Exercised: c.SessionsFenced+c.SessionsNotFenced > 0},
		{ID: "G10", Title: "Slow consumers",
			Says:      "A client that cannot keep up is closed with 4001 and the others are not held up: the slow probe's connection, which reads nothing while its room is flooded, is cut.",
			Counts:    []count{{"slow_consumers_cut", c.SlowConsumersCut, false}, {"slow_consumers_not_cut", c.SlowConsumersNotCut, true}},
			Exercised: c.SlowConsumersCut+c.SlowConsumersNotCut > 0},
		{ID: "G9", Title: "Targeted fan-out",
			Says:      "A gateway subscribes to the rooms it hosts, never by pattern: a publish reaches only the nodes hosting its room.",
			Counts:    []count{{"pattern_subscriptions", c.PatternSubscriptions, true}},
			Exercised: c.Published > 0},
	}
	known := map[string]bool{}
	for i := range gs {
		g := &gs[i]
		for _, n := range g.Counts {
			known[n.Name] = true
			if ex := r.Examples[n.Name]; len(ex) > 0 {
				g.Findings = append(g.Findings, newFinding(n.Name, n.Value, n.Bad, ex))
			}
		}
	}
	other := guarantee{ID: "", Title: "Other findings", Says: "Findings the checker reported that this report does not group."}
	for _, name := range sortedKeys(r.Examples) {
		if ex := r.Examples[name]; !known[name] && len(ex) > 0 {
			other.Findings = append(other.Findings, newFinding(name, len(ex), true, ex))
		}
	}
	if len(other.Findings) > 0 {
		gs = append(gs, other)
	}
	return gs
}

func newFinding(name string, total int, bad bool, ex []check.Example) finding {
	return finding{Name: name, Total: max(total, len(ex)), Bad: bad, Examples: ex[:min(len(ex), maxExamples)]}
}

// Judged reports whether g has a count that can break it; a group of
// context counts only (G4's retries) is shown, not judged.
func (g guarantee) Judged() bool {
	return slices.ContainsFunc(g.Counts, func(c count) bool { return c.Bad })
}

// Broken reports whether any of g's bad counts is above zero.
func (g guarantee) Broken() bool {
	for _, c := range g.Counts {
		if c.Bad && c.Value > 0 {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for n := range m {
		k = append(k, n)
	}
	slices.Sort(k)
	return k
}
