package gateway

import (
	"sync"

	"github.com/geolab/geolab/gateway/broker"
)

// maxOwnSeqs bounds ownSeqs: past it, a room's entry is dropped to make
// room for another (the node then knows nothing of that room, as if it had
// never seen it: the script's check is skipped, nothing else changes).
const maxOwnSeqs = 1 << 16

// ownSeqs is, per room, the highest (epoch, oseq) of this region's own
// sequence that this node knows was handed out: dispatched to its
// subscribers, or assigned to a publish it ran (acked or not: a publish
// refused under --durability replicated was stored and delivered live all
// the same). Every publish passes it to publish.lua (broker.PublishRequest's
// Seen): a room's sequence that Redis holds below it under the same epoch
// lost events that were seen — a replica promoted before it had them — and
// the script starts a new epoch instead of numbering new events with the
// lost ones' oseqs (docs/guarantees.md, G12's edge). Safe for concurrent use.
type ownSeqs struct {
	mu sync.Mutex
	m  map[string]floor
}

func newOwnSeqs() *ownSeqs { return &ownSeqs{m: map[string]floor{}} }

// saw records that (epoch, oseq) of room's own sequence was handed out. Of
// one epoch it keeps the highest; another epoch replaces it (the sequence
// went on in a new life, or this is a late word of an old one, which only
// makes the check miss, never fire for nothing: the script compares under
// the epoch Redis holds).
func (o *ownSeqs) saw(room, epoch string, oseq uint64) {
	if epoch == "" || oseq == 0 {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	f, ok := o.m[room]
	if ok && f.epoch == epoch && f.oseq >= oseq {
		return
	}
	if !ok && len(o.m) >= maxOwnSeqs {
		for k := range o.m { // any one
			delete(o.m, k)
			break
		}
	}
	o.m[room] = floor{epoch: epoch, oseq: oseq}
}

// seen is what saw recorded of room, for publish.lua.
func (o *ownSeqs) seen(room string) broker.SeqSeen {
	o.mu.Lock()
	defer o.mu.Unlock()
	f := o.m[room]
	return broker.SeqSeen{Epoch: f.epoch, Oseq: f.oseq}
}
