package harness

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/lab"
	"github.com/geolab/geolab/lab/link"
)

// Probes of a running lab: where its gateways are reached, what they and
// the bridges answer, and what the kernel says of a part's pid.

// Direct is gateway gw-NODE of region's own /ws URL, bypassing every link:
// a client inside the gateway's datacenter.
func Direct(l *lab.Lab, region string, node int) string {
	return "ws://" + l.Region(region).Gateway(node).Listen + "/ws"
}

// Via is the /ws URL through which a client living in home reaches gateway
// gw-NODE of region: through its client link client.HOME.REGION.gw-NODE.
func Via(t TB, l *lab.Lab, home, region string, node int) string {
	t.Helper()
	return "ws://" + Link(t, l, link.Client, home, region, fmt.Sprintf("gw-%d", node)).Listen + "/ws"
}

// Link is the lab's link named by kind, from, to and node (link.Name), or
// fails t.
func Link(t TB, l *lab.Lab, kind link.Kind, from, to, node string) link.Link {
	t.Helper()
	ln, ok := l.Net().Get(link.Name(kind, from, to, node))
	if !ok {
		t.Fatalf("no link %s", link.Name(kind, from, to, node))
	}
	return ln
}

// Readyz is a gateway's /readyz status at addr (host:port), or the error of
// asking within timeout.
func Readyz(addr string, timeout time.Duration) (int, error) {
	c := http.Client{Timeout: timeout}
	resp, err := c.Get("http://" + addr + "/readyz")
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Ready reports whether the gateway at addr answers /readyz with 200
// within a second.
func Ready(addr string) bool {
	code, err := Readyz(addr, time.Second)
	return err == nil && code == http.StatusOK
}

// Metric sums the samples of a metric on a gateway's /metrics at addr, -1
// when the page cannot be read within 2 s.
func Metric(addr, name string) float64 {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// BridgeFeed is region's bridge's view of its feed from origin (its pull
// of origin's outbox, over the WAN link wan.REGION.ORIGIN); ok is false
// when the bridge does not answer or has no such feed.
func BridgeFeed(l *lab.Lab, region, origin string) (fs lab.FeedLagStatus, ok bool) {
	st, err := l.BridgeStatus(context.Background(), region)
	if err != nil {
		return lab.FeedLagStatus{}, false
	}
	for _, fs := range st.Feeds {
		if fs.Origin == origin {
			return fs, true
		}
	}
	return lab.FeedLagStatus{}, false
}

// BridgeUp reports whether region's bridge answers and counts its feed
// from origin up.
func BridgeUp(l *lab.Lab, region, origin string) bool {
	fs, ok := BridgeFeed(l, region, origin)
	return ok && fs.Up
}

// BridgeDown reports whether region's bridge answers and counts its feed
// from origin down.
func BridgeDown(l *lab.Lab, region, origin string) bool {
	fs, ok := BridgeFeed(l, region, origin)
	return ok && !fs.Up
}

// Handshake opens a raw WebSocket to a gateway's /ws through addr
// (host:port), with a token of the lab and a handshake bound.
func Handshake(l *lab.Lab, addr string, bound time.Duration) (*websocket.Conn, error) {
	tok, err := l.Token("raw", []string{"*"}, []string{"*"}, time.Hour)
	if err != nil {
		return nil, err
	}
	d := websocket.Dialer{HandshakeTimeout: bound}
	c, _, err := d.Dial("ws://"+addr+"/ws", http.Header{"Authorization": {"Bearer " + tok}})
	return c, err
}

// IsTimeout reports whether err is a network timeout.
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Resume subscribes to room over a fresh raw connection to the gateway at
// addr with the given since and epochs, and returns the gateway's subscribed
// (or error) frame; it fails t when there is none within 10 s.
func Resume(t TB, l *lab.Lab, addr, room string, since protocol.Positions, epochs protocol.Epochs) protocol.ServerFrame {
	t.Helper()
	c, err := Handshake(l, addr, 5*time.Second)
	if err != nil {
		t.Fatalf("resume dial %s: %v", addr, err)
	}
	defer c.Close()
	sub, _ := json.Marshal(map[string]any{"type": "subscribe", "room": room, "since": since, "epochs": epochs})
	if err := c.WriteMessage(websocket.TextMessage, sub); err != nil {
		t.Fatalf("resume %s: %v", room, err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("resume %s: %v", room, err)
		}
		f, err := protocol.DecodeServerFrame(b)
		if err != nil {
			t.Fatalf("resume %s: %v", room, err)
		}
		if f.Type == "subscribed" || f.Type == "error" {
			return *f
		}
	}
}

// Alive reports whether pid is a live process of this machine (signal 0
// reaches it, or would but for permission). A part's Pid is one with every
// provider: a child process, or a container's process on the local engine
// the docker provider needs (it dials containers' addresses from the host).
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Stopped reports whether the kernel holds pid stopped: in state T, as
// SIGSTOP leaves it (the process provider's pause), or frozen by its
// cgroup's freezer, as docker pause leaves a container's processes (cgroup
// v1 freezer.state FROZEN, v2 cgroup.events "frozen 1"). It is false for a
// pid that does not exist.
func Stopped(pid int) bool {
	return State(pid) == 'T' || frozen(pid)
}

// State is the kernel's state letter of pid in /proc ('R', 'S', 'D', 'T'
// stopped …), 0 when there is no such process.
func State(pid int) byte {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0
	}
	return s[i+2]
}

// frozen reports whether pid's cgroup is frozen.
func frozen(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		// hierarchy-ID:controllers:path
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		switch {
		case f[0] == "0" && f[1] == "":
			ev, err := os.ReadFile("/sys/fs/cgroup" + f[2] + "/cgroup.events")
			if err == nil && strings.Contains(string(ev), "frozen 1") {
				return true
			}
		case strings.Contains(","+f[1]+",", ",freezer,"):
			st, err := os.ReadFile("/sys/fs/cgroup/freezer" + f[2] + "/freezer.state")
			if err == nil && strings.TrimSpace(string(st)) == "FROZEN" {
				return true
			}
		}
	}
	return false
}
