package link_test

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/geolab/geolab/internal/toxitest"
	"github.com/geolab/geolab/lab/link"
)

// A link with Bind is bound where Bind says and dialled at Listen's host
// with the port Toxiproxy bound (swarm agents: bound on every interface of
// Toxiproxy's task, dialled by the lab at its docker_gwbridge address):
// the link's Listen answers with the upstream's bytes.
func TestALinkBoundElsewhereIsDialledAtListensHostAndTheBoundPort(t *testing.T) {
	url := toxitest.Start(t)
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	go func() {
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("upstream\n"))
			c.Close()
		}
	}()
	n, err := link.New(url, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	l, err := n.Create(link.Link{Name: link.Name(link.Client, "us-east", "us-east", "gw-1"), Kind: link.Client,
		From: "us-east", To: "us-east", Node: "gw-1", Listen: "localhost:0", Bind: "127.0.0.1:0", Upstream: up.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	host, port, err := net.SplitHostPort(l.Listen)
	if err != nil || host != "localhost" || port == "0" {
		t.Fatalf("Listen = %q: want localhost and the port Toxiproxy bound", l.Listen)
	}
	if got, _ := n.Get(l.Name); got.Listen != l.Listen {
		t.Fatalf("the net keeps Listen %q, Create returned %q", got.Listen, l.Listen)
	}
	c, err := net.DialTimeout("tcp", l.Listen, 5*time.Second)
	if err != nil {
		t.Fatalf("dial the link at %s: %v", l.Listen, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "upstream" {
		t.Fatalf("through the link: %q, %v; want the upstream's line", line, err)
	}
}
