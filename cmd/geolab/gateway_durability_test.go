package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/geolab/geolab/gateway/auth"
	"github.com/geolab/geolab/internal/redistest"
	"github.com/geolab/geolab/internal/testbin"
)

// `geolab gateway --durability replicated` on a Redis without a replica
// stops at start, naming the flag and what Redis said, instead of
// refusing every publish after --durability-timeout.
func TestGatewayProcessRefusesReplicatedDurabilityWithoutAReplica(t *testing.T) {
	rs := redistest.Start(t)
	bin, err := testbin.Path()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "gateway", "--region", "us-east", "--node", "gw-1", "--listen", "127.0.0.1:0",
		"--redis", rs.Addr(), "--durability", "replicated")
	cmd.Env = append(os.Environ(), auth.SecretEnv+"="+drainSecret)
	out, err := cmd.CombinedOutput()
	if err == nil || ctx.Err() != nil {
		t.Fatalf("geolab gateway did not stop with an error (%v, %v):\n%s", err, ctx.Err(), out)
	}
	want := "gateway: --durability replicated: the Redis has no replica (INFO replication: role:master, connected_slaves:0): every publish would be refused"
	if !strings.Contains(string(out), want) {
		t.Fatalf("output:\n%s\nwant it to hold %q", out, want)
	}
}
