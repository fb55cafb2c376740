package fault

import (
	"context"
	"errors"
	"fmt"

	"github.com/geolab/geolab/lab/link"
	"github.com/geolab/geolab/lab/topology"
)

// partitionKind cuts two regions apart: every client, WAN link between them.
//
// Mode reset closes the links' connections and refuses new ones (the peer
// sees a reset or a refusal at once). Mode blackhole keeps accepting
// connections but lets nothing through, in either direction, so that only
// timeouts notice. Direction one models packets from Regions[0] to
// Regions[1] being dropped: on links Regions[0] dials, the upstream stream
// stops; on links Regions[1] dials, the downstream stream stops.
type partitionKind struct{}

func init() { register(partitionKind{}) }

func (partitionKind) Name() string { return "partition" }
func (partitionKind) Doc() string {
	return "cut two regions apart (mode reset|blackhole, direction both|one)"
}

func (partitionKind) Validate(s Spec, t *topology.Topology) error {
	if err := only(s, "regions", "mode", "direction"); err != nil {
		return err
	}
	if err := checkMode(s.Mode); err != nil {
		return err
	}
	if s.Direction != "" && s.Direction != "both" && s.Direction != "one" {
		return fmt.Errorf("direction %q: want both or one", s.Direction)
	}
	return needRegions(s, t, 2)
}

func checkMode(m string) error {
	if m != "" && m != "reset" && m != "blackhole" {
		return fmt.Errorf("mode %q: want reset or blackhole", m)
	}
	return nil
}

func (partitionKind) Inject(_ context.Context, w World, s Spec, id string) (Heal, error) {
	a, b := s.Regions[0], s.Regions[1]
	links := w.Net().Select(func(l link.Link) bool { return l.Crosses(a, b) })
	if s.Direction != "one" {
		return cut(w, links, id, s.Mode)
	}
	// One way: drop what a sends towards b.
	var fwd, back []link.Link
	for _, l := range links {
		if l.From == a {
			fwd = append(fwd, l)
		} else {
			back = append(back, l)
		}
	}
	typ, attrs := "timeout", map[string]any{"timeout": 0}
	if s.Mode != "blackhole" {
		typ = "reset_peer"
	}
	h1, err := addToxics(w, fwd, id, typ, []string{"upstream"}, func(string) map[string]any { return attrs })
	if err != nil {
		return nil, err
	}
	h2, err := addToxics(w, back, id, typ, []string{"downstream"}, func(string) map[string]any { return attrs })
	if err != nil {
		_ = h1(context.Background())
		return nil, err
	}
	return func(ctx context.Context) error { return errors.Join(h1(ctx), h2(ctx)) }, nil
}

// cut closes links both ways: disabled (reset) or blackholed.
func cut(w World, links []link.Link, id, mode string) (Heal, error) {
	if mode == "blackhole" {
		return addToxics(w, links, id, "timeout", []string{"upstream", "downstream"}, func(string) map[string]any {
			return map[string]any{"timeout": 0}
		})
	}
	var held []string
	heal := func(context.Context) error {
		var errs []error
		for _, n := range held {
			errs = append(errs, w.Net().Enable(n, id))
		}
		return errors.Join(errs...)
	}
	for _, l := range links {
		if err := w.Net().Disable(l.Name, id); err != nil {
			_ = heal(context.Background())
			return nil, err
		}
		held = append(held, l.Name)
	}
	return heal, nil
}
