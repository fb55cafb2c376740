package clusterslot_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/geolab/geolab/internal/clusterslot"
	"github.com/geolab/geolab/internal/redistest"
)

// TestMigrateMovesEveryKeyOfTheSlot: on a real 3-primary cluster, more keys
// than one MIGRATE batch carries all move to the new owner, which then
// serves the slot, and the old owner redirects; a migration to the node the
// slot is on is refused.
func TestMigrateMovesEveryKeyOfTheSlot(t *testing.T) {
	c := redistest.StartCluster(t, 3, 0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const keys = clusterslot.Batch*2 + 7
	for i := range keys {
		if err := c.Client().Set(ctx, fmt.Sprintf("{slot-test}k%d", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	from := c.PrimaryOf(t, "{slot-test}")
	var to *redistest.ClusterNode
	var others []clusterslot.Node
	for _, p := range c.Primaries(t) {
		switch {
		case p == from:
		case to == nil:
			to = p
		default:
			others = append(others, clusterslot.Node{Name: p.Name, Client: p.Client(), Addr: p.Addr})
		}
	}
	node := func(n *redistest.ClusterNode) clusterslot.Node {
		return clusterslot.Node{Name: n.Name, Client: n.Client(), Addr: n.Addr}
	}
	slot := c.Slot(t, "{slot-test}")

	if err := clusterslot.Migrate(ctx, slot, node(from), node(from), others); err == nil || !strings.Contains(err.Error(), "is both source and destination") {
		t.Fatalf("migrate to the node the slot is on: %v", err)
	}
	if err := clusterslot.Migrate(ctx, slot, node(from), node(to), others); err != nil {
		t.Fatal(err)
	}
	if n, err := to.Client().ClusterCountKeysInSlot(ctx, slot).Result(); err != nil || n != keys {
		t.Fatalf("new owner %s holds %d keys of slot %d (%v), want %d", to.Name, n, slot, err, keys)
	}
	if n, err := from.Client().ClusterCountKeysInSlot(ctx, slot).Result(); err != nil || n != 0 {
		t.Fatalf("old owner %s still holds %d keys of slot %d (%v)", from.Name, n, slot, err)
	}
	if err := from.Client().Get(ctx, "{slot-test}k0").Err(); err == nil || !strings.HasPrefix(err.Error(), "MOVED") {
		t.Fatalf("GET on the old owner: %v, want MOVED", err)
	}
	if got := c.PrimaryOf(t, "{slot-test}"); got != to {
		t.Fatalf("the cluster agrees on %s as the slot's owner, want %s", got.Addr, to.Addr)
	}
}
