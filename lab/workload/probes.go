package workload

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/geolab/geolab/gateway/client"
	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/lab/topology"
)

// A region-local room is named local:REGION:N: only REGION may hold its
// events. The workload's clients join their own region's, so an event that
// leaked into another region would be seen by nobody; a leak probe, one per
// region, joins every other region's local rooms in its own region and at
// the end of the run asks for their whole stored history there.

// LeakProbesOn reports whether the plan of s over topo has leak probes:
// LeakProbes when set, else whether topo has two regions or more and s has
// local rooms.
func (s *Spec) LeakProbesOn(topo *topology.Topology) bool {
	if s.LocalRooms == 0 || len(topo.RegionNames()) < 2 {
		return false
	}
	return s.LeakProbes == nil || *s.LeakProbes
}

// ValidateFor names what is wrong with s over topo beyond Validate: leak
// probes asked for on a topology with one region, a fence probe on one
// without two federating regions, a slow probe where every region
// federates its room.
func (s *Spec) ValidateFor(topo *topology.Topology) error {
	if s.LeakProbes != nil && *s.LeakProbes && len(topo.RegionNames()) < 2 {
		return fmt.Errorf("leak_probes: true needs a topology of two regions or more (probes join the other regions' local rooms), %s has %d",
			topo.Name, len(topo.RegionNames()))
	}
	if s.FenceProbe != nil && *s.FenceProbe && len(federating(topo)) < 2 {
		return fmt.Errorf("fence_probe: true needs a topology with two regions that federate (a session taken over travels between their bridges), %s has %d",
			topo.Name, len(federating(topo)))
	}
	if s.SlowProbe != nil && *s.SlowProbe && slowRegion(topo) == nil {
		return fmt.Errorf("slow_probe: true needs a region that keeps its room local:REGION:slow-probe to itself, and every region of %s federates it",
			topo.Name)
	}
	return nil
}

// localRoom is the name of region's n-th local room.
func localRoom(region string, n int) string { return fmt.Sprintf("local:%s:%d", region, n) }

// localRegion is the region of a local room's name; "" for any other room.
func localRegion(room string) string {
	rest, ok := strings.CutPrefix(room, "local:")
	if !ok {
		return ""
	}
	region, _, ok := strings.Cut(rest, ":")
	if !ok {
		return ""
	}
	return region
}

// planProbes is one probe per region, p-REGION living in REGION, in every
// local room of every other region.
func planProbes(s Spec, topo *topology.Topology) []ClientPlan {
	var out []ClientPlan
	regions := topo.RegionNames()
	for _, home := range regions {
		p := ClientPlan{Name: "p-" + home, Home: home}
		for _, other := range regions {
			if other == home {
				continue
			}
			for n := 1; n <= s.LocalRooms; n++ {
				p.Rooms = append(p.Rooms, localRoom(other, n))
			}
		}
		slices.Sort(p.Rooms)
		out = append(out, p)
	}
	return out
}

// sweep follows, on one probe's connection, the answers to the final
// subscribes from since {} and the replays after them.
type sweep struct {
	mu      sync.Mutex
	pending map[string]*replay // room → its final subscribe; nil: no sweep
	left    int                // rooms whose answer or replay has not all arrived
	done    chan struct{}      // closed when left reaches 0
}

type replay struct {
	answered  bool
	want, got int // messages announced (missed), messages received since
}

// start arms the sweep for rooms.
func (sw *sweep) start(rooms []string) <-chan struct{} {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	sw.pending = map[string]*replay{}
	for _, r := range rooms {
		sw.pending[r] = &replay{}
	}
	sw.left = len(rooms)
	sw.done = make(chan struct{})
	if sw.left == 0 {
		close(sw.done)
	}
	return sw.done
}

// frame follows one frame the probe received (on the reader goroutine, in
// wire order): the first subscribed frame of a swept room after the sweep
// started is its answer, and the missed messages follow it.
func (sw *sweep) frame(f client.RawFrame) {
	if f.Dir != client.In {
		return
	}
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.left == 0 {
		return
	}
	sf, err := protocol.DecodeServerFrame(f.Data)
	if err != nil {
		return
	}
	rp := sw.pending[sf.Room]
	if rp == nil {
		return
	}
	switch {
	case sf.Type == protocol.TypeSubscribed && !rp.answered:
		rp.answered = true
		if sf.Recovered {
			rp.want = sf.Missed
		}
	case sf.Type == protocol.TypeMessage && rp.answered && rp.got < rp.want:
		rp.got++
	default:
		return
	}
	if rp.answered && rp.got >= rp.want {
		delete(sw.pending, sf.Room)
		if sw.left--; sw.left == 0 {
			close(sw.done)
		}
	}
}

// unfinished lists the rooms still waited for.
func (sw *sweep) unfinished() []string {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	var out []string
	for r, rp := range sw.pending {
		out = append(out, fmt.Sprintf("%s (answered %t, %d of %d replayed)", r, rp.answered, rp.got, rp.want))
	}
	slices.Sort(out)
	return out
}

// SweepProbes makes every leak probe ask its region for the whole stored
// history of the rooms it watches, so that an event that leaked into the
// region is delivered and lands in the history: a subscribe whose since
// names only the origins the probe already had messages of, at its
// positions — since {} when it had none, as in a run where nothing reached
// it. An origin not named is replayed from the start of its retained
// history; a named one from past what the probe had, so that nothing it
// was legitimately delivered (a region's own events in another region's
// local room, published there by that room's clients after they failed
// over) comes to it twice. A probe that failed over to another region skips
// that region's own rooms, which it is owed. It waits, within the spec's
// Quiesce, until every answer and every message it announced has arrived;
// an answer recovered:false (nothing replayed) is an error. Call it after
// Quiesce and before Close; with no probes it does nothing.
func (r *Runner) SweepProbes(ctx context.Context) error {
	if len(r.probes) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.spec.Quiesce)
	defer cancel()
	errs := make([]error, len(r.probes))
	var wg sync.WaitGroup
	for j, p := range r.probes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[j] = r.sweepProbe(ctx, j, p)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("workload: leak probes: %w", err)
	}
	return nil
}

func (r *Runner) sweepProbe(ctx context.Context, j int, p *client.Client) error {
	pp := r.plan.Probes[j]
	at := p.Region()
	var rooms []string
	for _, room := range pp.Rooms {
		if localRegion(room) != at {
			rooms = append(rooms, room)
		}
	}
	done := r.sweeps[j].start(rooms)
	var errs []error
	for _, room := range rooms {
		since, epochs := p.Positions(room)
		if since == nil {
			since = protocol.Positions{}
		}
		res, err := p.SubscribeFrom(ctx, room, since, epochs)
		if err != nil {
			return fmt.Errorf("%s: subscribe %s from since %v: %w", pp.Name, room, since, err)
		}
		if !res.Recovered {
			errs = append(errs, fmt.Errorf("%s: subscribe %s from since %v answered recovered:false (%s): its stored history was not replayed",
				pp.Name, room, since, res.Reason))
		}
	}
	select {
	case <-done:
		return errors.Join(errs...)
	case <-ctx.Done():
		return fmt.Errorf("%s: replays not complete within quiesce %s: %s", pp.Name, r.spec.Quiesce,
			strings.Join(r.sweeps[j].unfinished(), ", "))
	}
}
