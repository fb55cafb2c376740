// Package freeport picks the loopback ports the project's servers listen
// on. A part of the lab that stops and starts again (a Redis restart, a
// gateway killed and healed, a Toxiproxy proxy cut and re-enabled) binds the
// same port again, since its clients and proxies dial that port. A port of
// the kernel's ephemeral range may be taken meanwhile by any outgoing
// connection or any bind of port 0 on the machine, and the restart then
// fails with "address already in use". So the ports come from below that
// range (or above it), which neither takes.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// ephemeralRange is where the kernel picks ports for outgoing connections and
// binds of port 0.
const ephemeralRange = "/proc/sys/net/ipv4/ip_local_port_range"

// stableLow is the lowest port Loopback picks: above the well-known and
// commonly configured ports.
const stableLow = 10000

// stableRange is the ports Loopback picks from, [lo, hi]: from stableLow to
// just below the ephemeral range, or above it when that is the larger span.
func stableRange() (lo, hi int) {
	eLo, eHi := 32768, 60999 // Linux's default
	if b, err := os.ReadFile(ephemeralRange); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			a, errA := strconv.Atoi(f[0])
			z, errZ := strconv.Atoi(f[1])
			if errA == nil && errZ == nil && a <= z {
				eLo, eHi = a, z
			}
		}
	}
	if below, above := eLo-1-stableLow, 65535-eHi-1; below >= above {
		return stableLow, eLo - 1
	}
	return eHi + 1, 65535
}

// recentPorts is how many of the ports it handed out last Loopback never
// hands out again.
const recentPorts = 4096

// handedOut remembers the ports Loopback handed out last, in the order
// handed out: a port is free when Loopback checks it, but its taker binds
// it only later, and a lab takes dozens at once (a cluster region: a port
// and a bus port per node, a proxy each). Drawn at random from some twenty
// thousand, two of them would be the same one every few labs, and the
// second to bind would fail with "address already in use".
var handedOut struct {
	sync.Mutex
	set  map[int]bool
	ring []int
}

// take reports whether port may be handed out, and if so remembers it.
func take(port int) bool {
	handedOut.Lock()
	defer handedOut.Unlock()
	if handedOut.set[port] {
		return false
	}
	if handedOut.set == nil {
		handedOut.set = map[int]bool{}
	}
	if len(handedOut.ring) == recentPorts {
		delete(handedOut.set, handedOut.ring[0])
		handedOut.ring = handedOut.ring[1:]
	}
	handedOut.set[port] = true
	handedOut.ring = append(handedOut.ring, port)
	return true
}

// Loopback returns a free loopback address (127.0.0.1:PORT) outside the
// kernel's ephemeral port range, and not one of the last ports it returned
// in this process (their takers may not have bound them yet).
func Loopback() (string, error) {
	lo, hi := stableRange()
	if hi <= lo {
		return "", fmt.Errorf("freeport: no port range outside the ephemeral ports (%s)", ephemeralRange)
	}
	for range 200 {
		port := lo + rand.IntN(hi-lo+1)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		_ = ln.Close()
		if !take(port) {
			continue
		}
		return addr, nil
	}
	return "", fmt.Errorf("freeport: no free loopback port in %d–%d after 200 tries", lo, hi)
}
