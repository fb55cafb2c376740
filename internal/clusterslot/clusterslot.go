// Package clusterslot moves one hash slot of a Redis Cluster from its
// primary to another, the way redis-cli --cluster reshard does, with the
// real commands. The lab's slot-migrate fault (lab/fault) and the package
// tests' cluster helper (internal/redistest) both move slots with it.
package clusterslot

import (
	"context"
	"fmt"
	"net"

	"github.com/redis/go-redis/v9"
)

// Batch is how many keys one MIGRATE carries (redis-cli moves 10 by
// default; the keys geolab writes are small).
const Batch = 100

// migrateTimeout is MIGRATE's own timeout for one batch, in milliseconds.
const migrateTimeout = 5000

// MaxBatches bounds the key-moving loop of one migration: a slot that keeps
// gaining keys faster than they move is an error, not a hang.
const MaxBatches = 100000

// Node is one primary as Migrate talks to it: a one-node client of it, and
// the address another node's MIGRATE reaches it at, named for errors.
type Node struct {
	Name   string
	Client *redis.Client
	// Addr is where the source's MIGRATE connects to (host:port).
	Addr string
}

// Migrate moves slot, with every key in it, from primary from to primary
// to: CLUSTER SETSLOT IMPORTING on to, MIGRATING on from, MIGRATE … KEYS of
// the slot's keys in batches of Batch until none is left on from, then
// CLUSTER SETSLOT NODE to on to, on from and on every one of others (the
// other primaries). It returns once those commands are answered; the
// replicas, and a primary missing from others, learn of it by gossip, so a
// caller that needs every node to agree waits for that itself.
//
// A migration that fails half-way is an error that leaves the slot
// MIGRATING/IMPORTING (redis-cli --cluster fix settles it).
func Migrate(ctx context.Context, slot int, from, to Node, others []Node) error {
	fromID, err := from.Client.Do(ctx, "CLUSTER", "MYID").Text()
	if err != nil {
		return fmt.Errorf("CLUSTER MYID on %s: %w", from.Name, err)
	}
	toID, err := to.Client.Do(ctx, "CLUSTER", "MYID").Text()
	if err != nil {
		return fmt.Errorf("CLUSTER MYID on %s: %w", to.Name, err)
	}
	if fromID == toID {
		return fmt.Errorf("slot %d: %s is both source and destination", slot, from.Name)
	}
	do := func(n Node, args ...any) error {
		if err := n.Client.Do(ctx, args...).Err(); err != nil {
			return fmt.Errorf("%v on %s: %w", args, n.Name, err)
		}
		return nil
	}
	if err := do(to, "CLUSTER", "SETSLOT", slot, "IMPORTING", fromID); err != nil {
		return err
	}
	if err := do(from, "CLUSTER", "SETSLOT", slot, "MIGRATING", toID); err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(to.Addr)
	if err != nil {
		return fmt.Errorf("%s's address %q: %w", to.Name, to.Addr, err)
	}
	for batch := 0; ; batch++ {
		if batch >= MaxBatches {
			return fmt.Errorf("slot %d still holds keys on %s after %d MIGRATE batches", slot, from.Name, MaxBatches)
		}
		keys, err := from.Client.ClusterGetKeysInSlot(ctx, slot, Batch).Result()
		if err != nil {
			return fmt.Errorf("CLUSTER GETKEYSINSLOT %d on %s: %w", slot, from.Name, err)
		}
		if len(keys) == 0 {
			break
		}
		args := []any{"MIGRATE", host, port, "", 0, migrateTimeout, "KEYS"}
		for _, k := range keys {
			args = append(args, k)
		}
		if err := do(from, args...); err != nil {
			return err
		}
	}
	for _, n := range append([]Node{to, from}, others...) {
		if err := do(n, "CLUSTER", "SETSLOT", slot, "NODE", toID); err != nil {
			return err
		}
	}
	return nil
}
