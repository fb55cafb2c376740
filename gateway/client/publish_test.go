package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/wait"
)

func TestPublishRetriedAfterDropReusesID(t *testing.T) {
	f := newFake(t, "us-east")
	c, fc1, rec := dial(t, f, nil)

	call := async(t, func() (Ack, error) {
		return c.Publish(context.Background(), testRoom, "m-7", json.RawMessage(`{"n":7}`))
	})
	first := fc1.expect(t, protocol.TypePublish)
	fc1.drop() // the gateway dies before acking

	fc2 := f.accept(t)
	second := fc2.expect(t, protocol.TypePublish)
	if second.f.ID != "m-7" || !bytes.Equal(first.raw, second.raw) {
		t.Errorf("resent publish = %s, first was %s", second.raw, first.raw)
	}
	fc2.send(protocol.Ack{Type: protocol.TypeAck, ID: "m-7", Event: "ev-7", Oseq: 1, Duplicate: true})
	ack, err := call()
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if ack.Event != "ev-7" || ack.Conn != 2 || ack.Attempts != 2 || !ack.Duplicate {
		t.Errorf("ack = %+v", ack)
	}
	if st := c.Stats(); st.Reconnects != 1 || st.PublishRetries != 1 {
		t.Errorf("stats = %+v", st)
	}
	waitState(t, rec, "disconnected conn 1, will reconnect", func(s StateEvent) bool {
		return s.State == StateDisconnected && s.Conn == 1 && s.WillReconnect
	})
}

func TestConcurrentPublishes(t *testing.T) {
	f := newFake(t, "us-east")
	c, fc, _ := dial(t, f, nil)
	const n = 20
	waits := make([]func() (Ack, error), n)
	for i := range n {
		id := fmt.Sprintf("m-%d", i)
		waits[i] = async(t, func() (Ack, error) { return c.Publish(context.Background(), testRoom, id, i) })
	}
	var ids []string
	for range n {
		ids = append(ids, fc.expect(t, protocol.TypePublish).f.ID)
	}
	for i := len(ids) - 1; i >= 0; i-- { // acks in reverse order
		fc.send(ackFrame(ids[i], "ev-"+ids[i], uint64(i)))
	}
	for i, w := range waits {
		ack, err := w()
		if err != nil || ack.ID != fmt.Sprintf("m-%d", i) || ack.Event != "ev-"+ack.ID {
			t.Errorf("publish %d: %+v, %v", i, ack, err)
		}
	}
}

func TestPublishErrors(t *testing.T) {
	f := newFake(t, "us-east")
	c, fc, _ := dial(t, f, nil)

	t.Run("refused at once", func(t *testing.T) {
		for _, code := range []string{protocol.CodeForbidden, protocol.CodeDataTooLarge, protocol.CodeBadFrame} {
			call := async(t, func() (Ack, error) { return c.Publish(context.Background(), testRoom, "p-"+code, 1) })
			pf := fc.expect(t, protocol.TypePublish)
			fc.send(protocol.ErrorFrame{Type: protocol.TypeError, Ref: pf.f.ID, Code: code, Message: "no"})
			_, err := call()
			var se *ServerError
			if !errors.As(err, &se) || se.Code != code || se.Local {
				t.Errorf("%s: Publish = %v", code, err)
			}
		}
	})
	t.Run("retried with the same id", func(t *testing.T) {
		for _, code := range []string{protocol.CodeUnavailable, protocol.CodeRateLimited, protocol.CodeInternal} {
			id := "r-" + code
			before := c.Stats().PublishRetries
			call := async(t, func() (Ack, error) { return c.Publish(context.Background(), testRoom, id, 1) })
			first := fc.expect(t, protocol.TypePublish)
			fc.send(protocol.ErrorFrame{Type: protocol.TypeError, Ref: id, Code: code, Message: "retry"})
			second := fc.expect(t, protocol.TypePublish)
			if !bytes.Equal(first.raw, second.raw) {
				t.Errorf("%s: retry %s differs from %s", code, second.raw, first.raw)
			}
			fc.send(ackFrame(id, "ev", 1))
			if ack, err := call(); err != nil || ack.Attempts != 2 || ack.Conn != 1 {
				t.Errorf("%s: Publish = %+v, %v", code, ack, err)
			}
			if got := c.Stats().PublishRetries - before; got != 1 {
				t.Errorf("%s: %d retries counted, want 1", code, got)
			}
		}
	})
	t.Run("refused before sending", func(t *testing.T) {
		cases := []struct{ rm, id, code string }{
			{"", "x", protocol.CodeBadRoom}, {"bad room", "x", protocol.CodeBadRoom},
			{testRoom, "", protocol.CodeBadID}, {testRoom, "bad id", protocol.CodeBadID},
		}
		for _, tc := range cases {
			_, err := c.Publish(context.Background(), tc.rm, tc.id, 1)
			var se *ServerError
			if !errors.As(err, &se) || se.Code != tc.code || !se.Local {
				t.Errorf("Publish(%q, %q) = %v, want local %s", tc.rm, tc.id, err, tc.code)
			}
		}
		_, err := c.Publish(context.Background(), testRoom, "raw", json.RawMessage(`{"broken`))
		var se *ServerError
		if !errors.As(err, &se) || se.Code != protocol.CodeBadFrame {
			t.Errorf("Publish of invalid raw JSON = %v", err)
		}
	})
	t.Run("context ends", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		call := async(t, func() (Ack, error) { return c.Publish(ctx, testRoom, "c-1", 1) })
		fc.expect(t, protocol.TypePublish)
		cancel()
		if _, err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("Publish = %v, want context.Canceled", err)
		}
		fc.send(ackFrame("c-1", "ev", 1)) // a late ack is ignored
	})
}

// A callback may call Publish: callbacks run on their own goroutine, never
// on the reader that must read the ack.
func TestCallbackMayPublishAndClose(t *testing.T) {
	f := newFake(t, "us-east")
	var cl atomic.Pointer[Client]
	acks := make(chan error, 1)
	c, fc, rec := dial(t, f, func(o *Options) {
		onMsg := o.OnMessage
		o.OnMessage = func(m Message) {
			onMsg(m)
			if m.Oseq == 1 {
				_, err := cl.Load().Publish(context.Background(), testRoom, "echo-1", m.Data)
				acks <- err
			}
			if m.Oseq == 3 {
				cl.Load().Close()
			}
		}
	})
	cl.Store(c)
	subscribe(t, c, fc, testRoom, subscribedFrame(testRoom, true, 0, "", nil, nil))
	fc.send(messageFrame(testRoom, "us-east", "e1", 1))
	pf := fc.expect(t, protocol.TypePublish)
	fc.send(messageFrame(testRoom, "us-east", "e1", 2)) // read while the callback waits
	fc.send(ackFrame(pf.f.ID, "ev", 9))
	select {
	case err := <-acks:
		if err != nil {
			t.Fatalf("Publish from a callback: %v", err)
		}
	case <-time.After(bound):
		t.Fatal("Publish from a callback deadlocked")
	}
	wait.For(t, bound, "message 2", func() bool { return len(rec.messages()) == 2 })
	fc.send(messageFrame(testRoom, "us-east", "e1", 3))
	select {
	case <-c.Done():
	case <-time.After(bound):
		t.Fatal("Close from a callback did not end the client")
	}
}
