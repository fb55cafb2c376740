package fault

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/lab/topology"
)

// slowClientKind opens Clients WebSocket connections to one gateway,
// subscribes each to Room and then never reads again, with a tiny receive
// buffer: a consumer that cannot keep up. They dial the gateway directly,
// not through its client link, so that the proxy's buffers do not absorb
// the backlog. The gateway should cut each with close 4001 once its queue
// fills (G10). Heal closes whatever is left.
type slowClientKind struct{}

func init() { register(slowClientKind{}) }

func (slowClientKind) Name() string { return "slow-client" }
func (slowClientKind) Doc() string {
	return "connect clients to one gateway that subscribe to a room and stop reading"
}

func (slowClientKind) Validate(s Spec, t *topology.Topology) error {
	if err := only(s, "regions", "node", "room", "clients"); err != nil {
		return err
	}
	if err := needRegions(s, t, 1); err != nil {
		return err
	}
	if s.Room == "" {
		return fmt.Errorf("room: required (the room the slow clients subscribe to)")
	}
	if s.Clients < 0 || s.Clients > 100 {
		return fmt.Errorf("clients: want 1..100, got %d", s.Clients)
	}
	return needNode(&s, t)
}

func (slowClientKind) Inject(ctx context.Context, w World, s Spec, id string) (Heal, error) {
	if s.Node == "" {
		s.Node = "gw-1"
	}
	n := max(s.Clients, 1)
	addr, err := w.GatewayAddr(s.Regions[0], s.Node)
	if err != nil {
		return nil, err
	}
	tok, err := w.Token("slow-"+id, []string{s.Room}, nil, time.Hour)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var conns []*websocket.Conn
	heal := func(context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
		conns = nil
		return nil
	}
	dialer := websocket.Dialer{HandshakeTimeout: 5 * time.Second, ReadBufferSize: 1024,
		NetDialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, a)
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetReadBuffer(4096)
			}
			return c, err
		}}
	for i := range n {
		c, _, err := dialer.DialContext(ctx, "ws://"+addr+"/ws", http.Header{"Authorization": {"Bearer " + tok}})
		if err != nil {
			_ = heal(ctx)
			return nil, fmt.Errorf("slow client %d: dial %s: %w", i+1, addr, err)
		}
		sub, _ := json.Marshal(protocol.ClientFrame{Type: protocol.TypeSubscribe, Room: s.Room})
		if err := c.WriteMessage(websocket.TextMessage, sub); err != nil {
			_ = c.Close()
			_ = heal(ctx)
			return nil, fmt.Errorf("slow client %d: subscribe: %w", i+1, err)
		}
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
		if err := awaitSubscribed(c, s.Room); err != nil {
			_ = heal(ctx)
			return nil, fmt.Errorf("slow client %d: %w", i+1, err)
		}
	}
	return heal, nil
}

// awaitSubscribed reads until the gateway confirms the subscription; after
// that the slow client reads nothing more.
func awaitSubscribed(c *websocket.Conn, room string) error {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			return fmt.Errorf("waiting for subscribed to %s: %w", room, err)
		}
		var f struct{ Type, Room, Code, Message string }
		_ = json.Unmarshal(b, &f)
		switch {
		case f.Type == protocol.TypeSubscribed && f.Room == room:
			return nil
		case f.Type == protocol.TypeError:
			return fmt.Errorf("subscribe %s refused: %s: %s", room, f.Code, f.Message)
		}
	}
}
