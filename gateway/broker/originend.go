package broker

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

//go:embed originend.lua
var originEndLua string

var originEndScript = redis.NewScript(originEndLua)

// endScanCount is the COUNT hint of the SCAN that finds the rooms EndOrigin
// ends: a page of keys per round trip.
const endScanCount = 512

// EndOrigin ends, in every room of this region, the current life of
// origin's sequence: the origin lost its data, so the events it had not
// shipped here will never come (originend.lua). Each room that had events
// of origin keeps it with an empty epoch at position 0, and its gateways
// announce recovered:false (epoch_changed) to the subscribers that had
// some. It returns how many rooms it ended; running it again ends no room
// that held a life (only the unheld ones again, below), so a caller may
// retry it after an error.
//
// With held not nil it ends only the rooms whose life of origin the origin
// no longer holds whole: held returns the origin's own epoch and last oseq
// of a room's sequence now ("" and 0 when it holds none), and a room whose
// applied position is at or below that, under the same epoch, is left as
// it is (an origin on a Redis Cluster whose outbox partition lost entries,
// a replica promoted before it had them, lost them in some rooms only).
//
// With unheld not nil, a room that holds no life of origin here and for
// which unheld returns true (it federates here) is ended too, and every
// subscriber told: the origin may have acked events in it, never shipped,
// after the last of its events that reached this region. Such a room is
// ended again on every call.
func (b *Broker) EndOrigin(ctx context.Context, origin string, held OriginHeld, unheld func(room string) bool) (int, error) {
	var mu sync.Mutex
	ended := 0
	scan := func(ctx context.Context, node redis.UniversalClient) error {
		iter := node.Scan(ctx, 0, "geolab:s:{*", endScanCount).Iterator()
		for iter.Next(ctx) {
			room := roomOfKey("geolab:s:{", iter.Val())
			if room == "" {
				continue
			}
			args := []any{origin, b.layout.Channel(room), b.publishCommand()}
			if held != nil {
				epoch, oseq, err := held(ctx, room)
				if err != nil {
					return fmt.Errorf("broker: what %s holds of %s: %w: %w", origin, room, ErrUnavailable, err)
				}
				args = append(args, "1", epoch, oseq)
			} else {
				args = append(args, "", "", "")
			}
			if unheld != nil && unheld(room) {
				args = append(args, "1")
			}
			n, err := originEndScript.Run(ctx, b.rdb, []string{b.layout.SeqKey(room)}, args...).Int()
			if err != nil {
				return fmt.Errorf("broker: end %s's sequence in %s: %w: %w", origin, room, ErrUnavailable, err)
			}
			mu.Lock()
			ended += n
			mu.Unlock()
		}
		if err := iter.Err(); err != nil {
			return fmt.Errorf("broker: scan the rooms holding %s: %w: %w", origin, ErrUnavailable, err)
		}
		return nil
	}
	var err error
	if cc, ok := b.rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error { return scan(ctx, node) })
	} else {
		err = scan(ctx, b.rdb)
	}
	return ended, err
}

// OriginHeld says what an origin region holds now of a room's sequence of
// its own: the epoch ("" for none) and its last oseq (EndOrigin).
type OriginHeld func(ctx context.Context, room string) (epoch string, oseq uint64, err error)

// HeldBy is the OriginHeld of origin read from its own Redis, remote (one
// Redis or a cluster client): the room's sequence hash in its layout.
func HeldBy(remote redis.UniversalClient, origin string) OriginHeld {
	l := LayoutOf(remote)
	return func(ctx context.Context, room string) (string, uint64, error) {
		v, err := remote.HMGet(ctx, l.SeqKey(room), "e:"+origin, "q:"+origin).Result()
		if err != nil {
			return "", 0, err
		}
		epoch, _ := v[0].(string)
		q, _ := v[1].(string)
		oseq, _ := strconv.ParseUint(q, 10, 64)
		return epoch, oseq, nil
	}
}

// roomOfKey returns the room of a key prefix+"ROOM}" or prefix+"TAG}{ROOM}"
// (prefix ends with "{"), or "" if key is not one. A room name holds no
// brace, so the two layouts never mix up.
func roomOfKey(prefix, key string) string {
	rest, ok := strings.CutPrefix(key, prefix)
	if !ok || !strings.HasSuffix(rest, "}") {
		return ""
	}
	rest = rest[:len(rest)-1]
	if _, room, ok := strings.Cut(rest, "}{"); ok {
		return room
	}
	if strings.ContainsAny(rest, "{}") {
		return ""
	}
	return rest
}
