package chaos_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/specs/speclab"
)

var _ = Describe("G11 session ownership", Label("failover"), func() {
	It("makes the stale owner give a session up after a partition heals", func() {
		topo, err := speclab.Topology("three-region")
		Expect(err).NotTo(HaveOccurred())
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		l, tok := speclab.StartLab(topo, "owner")
		dial := func(region string) *websocket.Conn {
			url := l.Endpoints(region, region)[0] + "?session=s-g11"
			ws, _, err := websocket.DefaultDialer.DialContext(ctx, url, http.Header{"Authorization": {"Bearer " + tok}})
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(ws.Close)
			var w protocol.Welcome
			Expect(ws.ReadJSON(&w)).To(Succeed())
			Expect(w.Type).To(Equal("welcome"))
			return ws
		}
		// Read us-east's connection in the background: it must end with 4003.
		inUS := dial("us-east")
		closed := make(chan int, 1)
		go func() {
			for {
				_, b, err := inUS.ReadMessage()
				if err != nil {
					var ce *websocket.CloseError
					if errors.As(err, &ce) {
						closed <- ce.Code
					} else {
						closed <- -1
					}
					return
				}
				var f map[string]any
				_ = json.Unmarshal(b, &f)
			}
		}()
		part, err := l.Partition("us-east", "eu-west")
		Expect(err).NotTo(HaveOccurred())
		dial("eu-west") // takes the session over while us-east cannot hear of it
		Consistently(closed).WithTimeout(time.Second).ShouldNot(Receive(), "us-east gave the session up while partitioned: it cannot know yet")
		Expect(l.Faults().Heal(ctx, part.ID)).To(Succeed())
		var code int
		Eventually(closed).WithTimeout(30*time.Second).Should(Receive(&code), "us-east kept the session after the heal")
		Expect(code).To(Equal(protocol.CloseSessionTakenOver))
		AddReportEntry("counts", "stale owner closed with 4003 after the heal")
	})
})
