package broker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// IsOOM reports whether err carries Redis refusing a write because it is at
// its maxmemory with a policy that evicts nothing (noeviction, or nothing
// left to evict): an error reply starting "OOM", from a command or from a
// script's first write (publish.lua writes nothing before it, so a refused
// publish stored nothing).
func IsOOM(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && strings.HasPrefix(re.Error(), "OOM")
}

// Memory is Redis's memory use against its limit, from INFO memory.
type Memory struct {
	Used      int64 // used_memory, bytes
	MaxMemory int64 // maxmemory, bytes; 0 = no limit
}

// BelowLimit reports whether Redis takes writes again as far as memory goes:
// no limit, or used memory under it.
func (m Memory) BelowLimit() bool { return m.MaxMemory == 0 || m.Used < m.MaxMemory }

// Memory reads Redis's memory use and limit (INFO memory).
func (b *Broker) Memory(ctx context.Context) (Memory, error) {
	info, err := b.rdb.Info(ctx, "memory").Result()
	if err != nil {
		return Memory{}, fmt.Errorf("broker: INFO memory: %w: %w", ErrUnavailable, err)
	}
	var m Memory
	found := 0
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if !ok || (k != "used_memory" && k != "maxmemory") {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("broker: INFO memory: %s %q: %w", k, v, err)
		}
		if k == "used_memory" {
			m.Used = n
		} else {
			m.MaxMemory = n
		}
		found++
	}
	if found != 2 {
		return Memory{}, errors.New("broker: INFO memory lacks used_memory or maxmemory")
	}
	return m, nil
}
