package broker

import (
	"slices"
	"strings"
	"testing"
)

// clusterNodes is a CLUSTER NODES answer of a 3×1 cluster whose second
// primary lost its replica (marked fail) and whose third has none; a
// primary without slots and a failed primary are not publish targets.
const clusterNodes = `a1 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460
b1 127.0.0.1:7002@17002 master - 0 0 2 connected 5461-10922
c1 127.0.0.1:7003@17003 master - 0 0 3 connected 10923-16383
a2 127.0.0.1:7004@17004 slave a1 0 0 1 connected
b2 127.0.0.1:7005@17005 slave,fail b1 0 0 2 disconnected
d1 127.0.0.1:7006@17006 master - 0 0 4 connected
e1 127.0.0.1:7007@17007 master,fail - 0 0 5 disconnected 1-2
`

// TestPrimariesWithoutReplica: the primaries that serve slots and have no
// replica that is not failed, in the answer's order.
func TestPrimariesWithoutReplica(t *testing.T) {
	got := PrimariesWithoutReplica(clusterNodes)
	if want := []string{"127.0.0.1:7002", "127.0.0.1:7003"}; !slices.Equal(got, want) {
		t.Fatalf("PrimariesWithoutReplica = %v, want %v", got, want)
	}
	paired := "a1 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-16383\na2 127.0.0.1:7004@17004 slave a1 0 0 1 connected\n"
	if got := PrimariesWithoutReplica(paired); len(got) != 0 {
		t.Fatalf("a primary with a replica: %v, want none", got)
	}
}

// FuzzPrimariesWithoutReplica: whatever CLUSTER NODES answers, every
// primary named is an address of the answer's second column; it never
// panics.
func FuzzPrimariesWithoutReplica(f *testing.F) {
	f.Add(clusterNodes)
	f.Add("x y master - 0 0 1 connected 0-1\n")
	f.Fuzz(func(t *testing.T, answer string) {
		for _, addr := range PrimariesWithoutReplica(answer) {
			if !strings.Contains(answer, addr) {
				t.Fatalf("%q named, not in %q", addr, answer)
			}
		}
	})
}
