package redisproc

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// ClusterConfigFile is the file in a cluster node's Dir where it keeps its
// view of the cluster (its id, its peers, the slots): a restarted node
// rejoins with it.
const ClusterConfigFile = "nodes.conf"

// ClusterArgs are the redis-server flags (Options.Args) that make a server
// a node of a geolab Redis Cluster: cluster mode on, its config in
// ClusterConfigFile, its cluster bus on busPort, marked failed by the others
// after nodeTimeout; a replica may always take over, however long it was
// cut from its primary (cluster-replica-validity-factor 0: faults decide
// the failovers, not the replica's age), and replicas stay with the shard
// they were given (cluster-allow-replica-migration no: the layout changes
// only when a fault or a test changes it). The lab's nodes and the package
// tests' (internal/redistest) both start with them.
func ClusterArgs(busPort int, nodeTimeout time.Duration) []string {
	return []string{
		"--cluster-enabled", "yes",
		"--cluster-config-file", ClusterConfigFile,
		"--cluster-port", strconv.Itoa(busPort),
		"--cluster-node-timeout", strconv.FormatInt(nodeTimeout.Milliseconds(), 10),
		"--cluster-replica-validity-factor", "0",
		"--cluster-allow-replica-migration", "no",
	}
}

// redisCliHint is the error text when redis-cli cannot be found.
const redisCliHint = "redis-cli not found on PATH: it makes the cluster (redis-cli --cluster create); install it (apt-get install -y redis-tools, which redis-server pulls in)"

// CreateCluster makes the cluster nodes at addrs one cluster with
// redis-cli --cluster create, replicas replicas per primary (so
// len(addrs)/(1+replicas) primaries, at least 3), and returns redis-cli's
// output. redis-cli is killed when ctx ends. An [ERR] in the output is an
// error even when redis-cli exits 0, which it does on some failures. It
// does not wait for the cluster to be ready: each caller checks what it
// needs.
func CreateCluster(ctx context.Context, addrs []string, replicas int) ([]byte, error) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", redisCliHint, err)
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	cmd := exec.CommandContext(ctx, cli, args...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("redis-cli %s: %w", strings.Join(args, " "), err)
	}
	if strings.Contains(string(out), "[ERR]") {
		return out, fmt.Errorf("redis-cli %s reported an error", strings.Join(args, " "))
	}
	return out, nil
}
