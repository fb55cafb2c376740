package fault

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Active is one injected, not yet healed fault.
type Active struct {
	ID       string    `json:"id"`
	Spec     Spec      `json:"spec"`
	Target   string    `json:"target"`
	Injected time.Time `json:"injected"`
	// Until is when it heals by itself (zero: when healed).
	Until time.Time `json:"until,omitzero"`

	heal  Heal
	timer *time.Timer
}

// Event is an injection or a heal, as the Book reports it to observers (the
// run's history records them).
type Event struct {
	ID, Action, Kind, Target string // Action: "inject" or "heal"
	Spec                     Spec
	At                       time.Time
	Err                      error
}

// Book injects faults into a World, keeps the active ones and heals them.
// Safe for concurrent use.
type Book struct {
	w World

	mu       sync.Mutex
	next     int
	active   []*Active
	observer func(Event)
}

// NewBook returns an empty book over w.
func NewBook(w World) *Book { return &Book{w: w} }

// NumberAfter makes the book number its next fault n+1 (f<n+1>), so that
// its ids do not clash with faults already on the network (an attached
// stack's). It never goes back.
func (b *Book) NumberAfter(n int) {
	b.mu.Lock()
	b.next = max(b.next, n)
	b.mu.Unlock()
}

// Observe sets f to receive every inject and heal (called synchronously,
// never under the book's lock).
func (b *Book) Observe(f func(Event)) {
	b.mu.Lock()
	b.observer = f
	b.mu.Unlock()
}

func (b *Book) emit(e Event) {
	b.mu.Lock()
	f := b.observer
	b.mu.Unlock()
	if f != nil {
		f(e)
	}
}

// Inject validates s, applies it and records it; with s.For set it heals by
// itself after that long. The returned Active names the fault's id.
func (b *Book) Inject(ctx context.Context, s Spec) (Active, error) {
	if err := Validate(s, b.w.Topology()); err != nil {
		return Active{}, err
	}
	if s.Kind == "gateway-kill" || s.Kind == "gateway-pause" || s.Kind == "gateway-drain" || s.Kind == "slow-client" {
		_ = needNode(&s, b.w.Topology()) // fills the default node for the record
	}
	if (s.Kind == "shard-kill" || s.Kind == "shard-failover" || s.Kind == "replica-pause") && s.Shard == 0 {
		s.Shard = 1 // the default shard, for the record
	}
	b.mu.Lock()
	b.next++
	id := fmt.Sprintf("f%d", b.next)
	b.mu.Unlock()
	heal, err := kinds[s.Kind].Inject(ctx, b.w, s, id)
	now := time.Now()
	if err != nil {
		return Active{}, fmt.Errorf("fault %s %s: %w", s.Kind, s.Target(), err)
	}
	a := &Active{ID: id, Spec: s, Target: s.Target(), Injected: now, heal: heal}
	if s.For > 0 {
		a.Until = now.Add(s.For)
	}
	b.mu.Lock()
	b.active = append(b.active, a)
	out := *a
	b.mu.Unlock()
	b.emit(Event{ID: id, Action: "inject", Kind: s.Kind, Target: a.Target, Spec: s, At: now})
	// The timer starts only once the fault is recorded and announced: a For
	// shorter than the injection itself must still find it to heal, and the
	// observer must see the injection before its heal.
	if s.For > 0 {
		b.mu.Lock()
		a.timer = time.AfterFunc(time.Until(a.Until), func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = b.Heal(ctx, id)
		})
		b.mu.Unlock()
	}
	return out, nil
}

// Heal undoes the active fault id. Healing a fault that is no longer active
// is an error naming it.
func (b *Book) Heal(ctx context.Context, id string) error {
	b.mu.Lock()
	var a *Active
	var timer *time.Timer
	for i, x := range b.active {
		if x.ID == id {
			a, timer = x, x.timer
			b.active = append(b.active[:i:i], b.active[i+1:]...)
			break
		}
	}
	b.mu.Unlock()
	if a == nil {
		return fmt.Errorf("fault %s is not active", id)
	}
	if timer != nil {
		timer.Stop()
	}
	err := a.heal(ctx)
	if err != nil {
		err = fmt.Errorf("heal %s (%s %s): %w", id, a.Spec.Kind, a.Target, err)
	}
	b.emit(Event{ID: id, Action: "heal", Kind: a.Spec.Kind, Target: a.Target, Spec: a.Spec, At: time.Now(), Err: err})
	return err
}

// HealAll heals every active fault, newest first, and reports every
// failure.
func (b *Book) HealAll(ctx context.Context) error {
	var errs []error
	for {
		b.mu.Lock()
		if len(b.active) == 0 {
			b.mu.Unlock()
			return errors.Join(errs...)
		}
		id := b.active[len(b.active)-1].ID
		b.mu.Unlock()
		if err := b.Heal(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
}

// List returns the active faults, oldest first.
func (b *Book) List() []Active {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Active, len(b.active))
	for i, a := range b.active {
		out[i] = *a
	}
	return out
}
