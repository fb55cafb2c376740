package broker

import (
	"context"
	"fmt"
)

// Range returns up to count history entries of room with ids from from
// (inclusive when inclusive is set) up to and including to, in stream order.
func (b *Broker) Range(ctx context.Context, room string, from StreamID, inclusive bool, to StreamID, count int64) ([]Entry, error) {
	start := from.String()
	if !inclusive {
		start = "(" + start
	}
	msgs, err := b.rdb.XRangeN(ctx, b.layout.HistoryKey(room), start, to.String(), count).Result()
	if err != nil {
		return nil, fmt.Errorf("broker: history of %s from %s to %s: %w: %w", room, from, to, ErrUnavailable, err)
	}
	return parseEntries(msgs)
}
