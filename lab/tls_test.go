package lab_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/geolab/geolab/internal/harness"
	"github.com/geolab/geolab/internal/redisaddr"
	"github.com/geolab/geolab/lab"
	"github.com/geolab/geolab/lab/provider"
)

// procFile reads /proc/PID/NAME split at its NULs (cmdline, environ).
func procFile(t *testing.T, pid int, name string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/" + name)
	if err != nil {
		t.Fatalf("/proc/%d/%s: %v", pid, name, err)
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

// passwordsOf returns the Redis passwords in pid's environment, by variable.
func passwordsOf(t *testing.T, pid int) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, kv := range procFile(t, pid, "environ") {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, redisaddr.PasswordEnv) {
			out[k] = v
		}
	}
	return out
}

// TestTLSRegionsComeUpAndFederate starts two-region-tls.yaml: each Redis
// speaks TLS only and knows only ACL users. It proves that the lab's
// clients reach it only with TLS and a user; that every gateway and bridge
// got its password through its environment and never its command line
// (which /proc shows every user), nor any file of the lab (logs, configs,
// the ACL files); and that the regions federate both ways, across a
// partition and its heal, through Toxiproxy, which carries the TLS bytes
// as they are. The docker provider runs no TLS or ACL Redis: its leg is
// skipped (TestTLSTopologyNeedsTheProcessProvider proves the refusal).
func TestTLSRegionsComeUpAndFederate(t *testing.T) {
	harness.RunWithProvider(t, func(t *testing.T, opts lab.Options) {
		if opts.Provider != provider.ProcessName {
			t.Skipf("the %s provider runs no TLS or ACL Redis: lab.Start refuses two-region-tls.yaml there (TestTLSTopologyNeedsTheProcessProvider)", opts.Provider)
		}
		l := harness.StartLab(t, "two-region-tls", opts)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()

		passwords := map[string]bool{}
		for _, name := range l.Topology().RegionNames() {
			r := l.Region(name)
			if r.Redis().CAFile() == "" {
				t.Fatalf("redis of %s has no CA file: not TLS", name)
			}
			plain := redis.NewClient(&redis.Options{Addr: r.Redis().Addr(), MaxRetries: -1, DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second})
			if err := plain.Ping(ctx).Err(); err == nil {
				t.Errorf("redis of %s answered plain TCP", name)
			}
			_ = plain.Close()
			o, err := r.RedisOptions()
			if err != nil {
				t.Fatal(err)
			}
			if o.TLSConfig == nil || o.Username != lab.RedisLabUser {
				t.Fatalf("the lab's client of %s: TLS %v, user %q", name, o.TLSConfig != nil, o.Username)
			}
			o.Username, o.Password = "", ""
			anon := redis.NewClient(o)
			err = anon.Ping(ctx).Err()
			_ = anon.Close()
			if err == nil || !strings.Contains(err.Error(), "NOAUTH") {
				t.Errorf("redis of %s over TLS without a user: %v, want NOAUTH (the default user off)", name, err)
			}

			for _, g := range r.Gateways() {
				args := strings.Join(procFile(t, g.Pid(), "cmdline"), " ")
				if !strings.Contains(args, "--redis rediss://"+lab.RedisGatewayUser+"@127.0.0.1:") || !strings.Contains(args, "--redis-ca-file "+r.Redis().CAFile()) {
					t.Errorf("%s/%s runs %q: want rediss:// as %s and the lab's CA", name, g.ID, args, lab.RedisGatewayUser)
				}
				pw := passwordsOf(t, g.Pid())
				if len(pw) != 1 || pw[redisaddr.PasswordEnv] == "" {
					t.Errorf("%s/%s: Redis passwords in its environment: %d, want %s", name, g.ID, len(pw), redisaddr.PasswordEnv)
				}
				for _, v := range pw {
					passwords[v] = true
					if strings.Contains(args, v) {
						t.Errorf("%s/%s: the password is on its command line", name, g.ID)
					}
				}
			}
			b := r.Bridge()
			args := strings.Join(procFile(t, b.Pid(), "cmdline"), " ")
			pw := passwordsOf(t, b.Pid())
			if len(pw) != 2 || pw[redisaddr.RegionPasswordEnv("us-east")] == "" || pw[redisaddr.RegionPasswordEnv("us-west")] == "" {
				t.Errorf("bridge of %s: Redis passwords in its environment: %v, want one per region", name, len(pw))
			}
			for _, v := range pw {
				passwords[v] = true
				if strings.Contains(args, v) {
					t.Errorf("bridge of %s: a password is on its command line", name)
				}
			}
		}
		if len(passwords) != 4 {
			t.Errorf("%d distinct passwords among gateways and bridges, want 4 (a gateway's and a bridge's per region)", len(passwords))
		}

		room := "tenant:tls"
		east := harness.Dial(t, l, "east", []string{harness.Direct(l, "us-east", 1)}, room)
		west := harness.Dial(t, l, "west", []string{harness.Direct(l, "us-west", 2)}, room)
		e1, w1 := east.Publish(room, "e-1"), west.Publish(room, "w-1")
		harness.WaitFor(t, 20*time.Second, "e-1 and w-1 cross both ways over TLS", func() bool {
			return west.Has(room, e1) && east.Has(room, w1)
		})
		harness.Partition(t, l, "us-east", "us-west")
		e2 := east.Publish(room, "e-2")
		harness.Never(t, time.Second, "e-2 crossed the partition", func() bool { return west.Has(room, e2) })
		harness.Heal(t, l)
		harness.WaitFor(t, 30*time.Second, "e-2 crosses after the heal", func() bool { return west.Has(room, e2) })
		harness.ExactlyOnceInOrder(t, west, room, []string{e1, e2})

		for _, name := range l.Topology().RegionNames() {
			rc, err := l.Region(name).RedisClient()
			if err != nil {
				t.Fatal(err)
			}
			n, err := rc.XLen(ctx, "geolab:outbox:"+name).Result()
			denied, derr := rc.Do(ctx, "ACL", "LOG").Slice()
			_ = rc.Close()
			if err != nil || n == 0 {
				t.Errorf("outbox of %s, read as %s: %d entries, %v", name, lab.RedisLabUser, n, err)
			}
			if derr != nil || len(denied) != 0 {
				t.Errorf("redis of %s denied a command or a login (broker.ACLRules too narrow?): %v %v", name, denied, derr)
			}
		}

		// No file of the lab holds a password: logs, bridge configs, the
		// ACL files (hashes only), Redis's own logs.
		files := 0
		err := filepath.WalkDir(l.WorkDir(), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			if strings.Contains(path, "appendonlydir") {
				return nil // Redis's data: what clients published
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			files++
			for pw := range passwords {
				if bytes.Contains(b, []byte(pw)) {
					t.Errorf("%s holds a Redis password", path)
				}
			}
			return nil
		})
		if err != nil || files < 10 {
			t.Fatalf("walked %d files of %s: %v", files, l.WorkDir(), err)
		}
	})
}

// The docker and swarm providers run Redis without TLS or ACL users: a topology that
// asks for them is refused before anything starts, naming the region and
// the provider that can run it (no Docker engine needed to be refused).
func TestTLSTopologyNeedsTheProcessProvider(t *testing.T) {
	topo := harness.Topology(t, "two-region-tls")
	for _, p := range []string{provider.DockerName, provider.SwarmName} {
		_, err := lab.Start(context.Background(), topo, lab.Options{Provider: p})
		if !errors.Is(err, provider.ErrNeedsProcess) ||
			!strings.Contains(err.Error(), "lab: region us-east: redis tls/acl on the "+p+" provider: tls/acl regions need the process provider") {
			t.Fatalf("lab.Start on %s: %v", p, err)
		}
	}
}
