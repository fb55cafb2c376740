package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/geolab/geolab/gateway/auth"
)

const cliSecret = "cli-test-secret-0123456789abcdef0123456789"

// run executes the CLI with args and returns stdout and the error.
func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestTokenPrintsAVerifiableToken(t *testing.T) {
	t.Setenv(auth.SecretEnv, cliSecret)
	out, err := runCmd(t, "token", "--sub", "alice", "--read", "tenant:*", "--read", "presence:*", "--publish", "tenant:*", "--ttl", "1h")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := auth.NewAuthority([]byte(cliSecret))
	c, err := a.Verify(strings.TrimSpace(out), time.Now())
	if err != nil {
		t.Fatalf("the printed token does not verify: %v", err)
	}
	if c.Subject != "alice" || !c.CanRead("presence:eu") || !c.CanPublish("tenant:1") || c.CanPublish("presence:eu") {
		t.Fatalf("claims %+v", c)
	}
}

func TestTokenSecretFromFile(t *testing.T) {
	t.Setenv(auth.SecretEnv, "")
	f := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(f, []byte(cliSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := runCmd(t, "token", "--sub", "a", "--jwt-secret-file", f); err != nil {
		t.Fatal(err)
	}
}

// TestBadFlagsNameWhatIsWrong: every bad invocation fails before anything
// starts, with an error naming the flag or setting at fault.
func TestBadFlagsNameWhatIsWrong(t *testing.T) {
	t.Setenv(auth.SecretEnv, cliSecret)
	cases := []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"token", "--sub", "a"}, "unset", "GEOLAB_JWT_SECRET"},
		{[]string{"token", "--sub", "a"}, "short", "at least 32"},
		{[]string{"token", "--read", "x"}, "", `"sub" not set`},
		{[]string{"token", "--sub", "a", "--read", "bad pattern"}, "", "bad pattern"},
		{[]string{"token", "--sub", "a", "--ttl", "-1h"}, "", "ttl"},
		{[]string{"gateway", "--node", "gw-1", "--listen", "127.0.0.1:0", "--redis", "127.0.0.1:1"}, "", "--region"},
		{[]string{"gateway", "--region", "us-east", "--node", "gw-1", "--listen", "127.0.0.1:0", "--redis", "127.0.0.1:1", "--subscribe-mode", "psub"}, "", "--subscribe-mode"},
		{[]string{"gateway", "--region", "us-east", "--node", "gw-1", "--listen", "127.0.0.1:0", "--redis", "127.0.0.1:1", "--redis-profile", "moon"}, "", "--redis-profile"},
		{[]string{"gateway", "--region", "us-east", "--node", "gw-1", "--listen", "127.0.0.1:0", "--redis", "127.0.0.1:1", "--send-queue", "1"}, "", "--send-queue"},
		{[]string{"gateway", "--region", "us-east", "--node", "gw-1", "--listen", "127.0.0.1:0", "--redis", "127.0.0.1:1", "--durability", "sync"}, "", `--durability "sync" must be async or replicated`},
		{[]string{"gateway", "--region", "us-east", "--node", "gw-1", "--listen", "127.0.0.1:0", "--redis", "127.0.0.1:1", "--durability-timeout", "0s"}, "", "--durability-timeout 0s must be between 1ms and 1m0s"},
		{[]string{"federation", "--region", "us-east"}, "", `"config" not set`},
		{[]string{"federation", "--region", "us-east", "--config", "/nonexistent.yaml"}, "", "--config"},
		{[]string{"bench", "fanout", "--clients", "0"}, "", "--clients"},
		{[]string{"bench", "fanout", "--payload", "10"}, "", "--payload"},
		{[]string{"bench", "fanout", "--redis-shards", "-1"}, "", "--redis-shards -1 must be 0 (one redis-server) or 3..8"},
		{[]string{"bench", "fanout", "--redis-shards", "2"}, "", "--redis-shards 2 must be 0 (one redis-server) or 3..8"},
		{[]string{"bench", "fanout", "--redis-replicas", "1"}, "", "--redis-replicas 1 needs a cluster: give --redis-shards 3..8"},
		{[]string{"bench", "fanout", "--redis-shards", "3", "--redis-replicas", "-1"}, "", "--redis-replicas -1 must be in 0..2"},
		{[]string{"bench", "fanout", "--compare-single"}, "", "--compare-single needs --redis-shards"},
		{[]string{"bench", "fanout", "--rate", "2000,0"}, "", "--rate 0 must be in"},
		{[]string{"bench", "fanout", "--rate", "fast"}, "", `invalid argument "fast" for "--rate"`},
		{[]string{"bench", "fanout", "--drain", "-1s"}, "", "--drain -1s must be in 0..2m"},
		{[]string{"--log-level", "loud", "gateway", "--region", "us-east"}, "", "--log-level"},
		{[]string{"no-such-command"}, "", "unknown command"},
	}
	for _, tc := range cases {
		switch tc.env {
		case "unset":
			t.Setenv(auth.SecretEnv, "")
		case "short":
			t.Setenv(auth.SecretEnv, "short")
		default:
			t.Setenv(auth.SecretEnv, cliSecret)
		}
		_, err := runCmd(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("geolab %s: %v, want an error containing %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}

func TestVersion(t *testing.T) {
	out, err := runCmd(t, "version")
	if err != nil || !strings.Contains(out, "protocol v1") {
		t.Fatalf("version: %q %v", out, err)
	}
}
