package redisaddr_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/geolab/geolab/internal/redisaddr"
)

// Every way of naming a cluster, and one address staying one Redis.
func TestParseTargetReadsClustersAndKeepsOneAddressPlain(t *testing.T) {
	for _, tc := range []struct {
		addr  string
		seeds []string
		user  string
		tls   bool
	}{
		{"127.0.0.1:6379", nil, "", false},
		{"redis://u@127.0.0.1:7001/2", nil, "u", false},
		{"127.0.0.1:7001,127.0.0.1:7002", []string{"127.0.0.1:7001", "127.0.0.1:7002"}, "", false},
		{"127.0.0.1:7001, 127.0.0.1:7002 ,127.0.0.1:7003", []string{"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"}, "", false},
		{"redis://127.0.0.1:7001?cluster=yes", []string{"127.0.0.1:7001"}, "", false},
		{"rediss://gw@h1:7001?cluster=true", []string{"h1:7001"}, "gw", true},
		{"redis://gw@h1:1,redis://gw@h2:2", []string{"h1:1", "h2:2"}, "gw", false},
		{"rediss://h1:1?cluster=1,rediss://h2:2", []string{"h1:1", "h2:2"}, "", true},
	} {
		tg, err := redisaddr.ParseTarget(tc.addr, from)
		if err != nil {
			t.Errorf("%s: %v", tc.addr, err)
			continue
		}
		if tg.Cluster() != (tc.seeds != nil) || !slices.Equal(tg.Seeds, tc.seeds) || tg.Node.Username != tc.user || (tg.Node.TLSConfig != nil) != tc.tls {
			t.Errorf("%s: cluster %v seeds %v user %q tls %v", tc.addr, tg.Cluster(), tg.Seeds, tg.Node.Username, tg.Node.TLSConfig != nil)
		}
		_, isCluster := tg.NewClient().(*redis.ClusterClient)
		if isCluster != tg.Cluster() {
			t.Errorf("%s: NewClient made a cluster client %v", tc.addr, isCluster)
		}
	}
}

// Each wrong cluster address gets an error that says what is wrong.
func TestParseTargetNamesWhatIsWrong(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"127.0.0.1:1,", "seed 2 of the cluster address is empty"},
		{"127.0.0.1:1,127.0.0.1", `seed 2 of the cluster: "127.0.0.1": missing port`},
		{"redis://h:1,rediss://h:2", "seed 2 of the cluster: every seed must have the first one's scheme and user"},
		{"redis://a@h:1,redis://b@h:2", "every seed must have the first one's scheme and user"},
		{"redis://h:1/3,redis://h:2/3", "seed 1 of the cluster names database 3: a Redis Cluster has database 0 only"},
		{"redis://h:1/3?cluster=yes", "names database 3"},
		{"redis://h:1?cluster=no", "query options (?…) are not taken"},
		{"redis://h:1?cluster=yes&dial_timeout=1s", "query options"},
		{"h:1?cluster=yes", "port"},
		{"redis://u:pw@h:1,redis://u@h:2", "holds a password (not shown)"},
	} {
		_, err := redisaddr.ParseTarget(tc.addr, from)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.addr, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "pw") && strings.Contains(tc.addr, ":pw@") {
			t.Errorf("%q: the error shows the password: %v", tc.addr, err)
		}
	}
}

// A cluster's options carry the node options' user, password and TLS.
func TestConnTargetOfACluster(t *testing.T) {
	c := redisaddr.Conn{Addr: "redis://gw@127.0.0.1:7001,redis://gw@127.0.0.1:7002", Password: "pw", PasswordFrom: from}
	tg, err := c.Target()
	if err != nil {
		t.Fatal(err)
	}
	co := tg.ClusterOptions()
	if !slices.Equal(co.Addrs, []string{"127.0.0.1:7001", "127.0.0.1:7002"}) || co.Username != "gw" || co.Password != "pw" || co.MaxRedirects != 8 {
		t.Fatalf("cluster options %+v", co)
	}
	if _, err := (redisaddr.Conn{Addr: "redis://gw@h:1,redis://gw@h:2", PasswordFrom: from}).Target(); err == nil || !strings.Contains(err.Error(), "no password was given") {
		t.Fatalf("a user without a password: %v", err)
	}
}
