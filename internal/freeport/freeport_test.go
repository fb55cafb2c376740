package freeport

import (
	"net"
	"strconv"
	"testing"
)

// Loopback picks loopback ports the kernel never hands out on its own
// (outgoing connections, binds of port 0), so that a cut proxy can bind its
// port again at the heal.
func TestLoopbackIsOutsideTheEphemeralRange(t *testing.T) {
	lo, hi := stableRange()
	if lo < stableLow || hi > 65535 || hi <= lo {
		t.Fatalf("stable range %d–%d", lo, hi)
	}
	for range 50 {
		addr, err := Loopback()
		if err != nil {
			t.Fatal(err)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host != "127.0.0.1" {
			t.Fatalf("Loopback() = %q, want 127.0.0.1:PORT", addr)
		}
		p, _ := strconv.Atoi(port)
		if p < lo || p > hi {
			t.Fatalf("port %d outside the stable range %d–%d", p, lo, hi)
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("Loopback() = %s, which cannot be bound: %v", addr, err)
		}
		_ = ln.Close()
	}
	// Port 0 binds land in the ephemeral range, never in the stable one.
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
		if p >= lo && p <= hi {
			t.Fatalf("the kernel bound port 0 to %d, inside the stable range %d–%d", p, lo, hi)
		}
	}
}

// Loopback never hands out a port it handed out recently: the taker of the
// first may not have bound it yet when the second is drawn (a lab draws
// dozens at once), and a second taker would then fail to bind.
func TestLoopbackDoesNotRepeatARecentPort(t *testing.T) {
	seen := map[string]bool{}
	for range 2000 {
		addr, err := Loopback()
		if err != nil {
			t.Fatal(err)
		}
		if seen[addr] {
			t.Fatalf("Loopback() handed out %s twice among %d ports, none of them bound", addr, len(seen))
		}
		seen[addr] = true
	}
}
