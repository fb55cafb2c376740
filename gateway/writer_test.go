package gateway

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The writer frames text messages itself (frameHeader), several in one
// writev: a standard client reads each message whole and in order, across
// every length encoding (7-bit, 16-bit, 64-bit) and their boundaries.
func TestFrameHeaderIsReadByAStandardClient(t *testing.T) {
	sizes := []int{0, 1, 125, 126, 127, 65535, 65536, 70000}
	done := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			done <- err
			return
		}
		defer ws.Close()
		var hdr []byte
		var iov [][]byte
		for i, n := range sizes {
			hdr = frameHeader(hdr[:0], n)
			if got := len(hdr); got != frameHeaderLen(n) {
				t.Errorf("size %d: header of %d bytes, frameHeaderLen says %d", n, got, frameHeaderLen(n))
			}
			iov = append(iov, bytes.Clone(hdr), bytes.Repeat([]byte{byte('a' + i)}, n))
		}
		bufs := net.Buffers(iov)
		_, err = bufs.WriteTo(ws.NetConn())
		done <- err
		// Stay until the client has read everything.
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _, _ = ws.ReadMessage()
	}))
	defer srv.Close()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i, n := range sizes {
		mt, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("message %d (%d bytes): %v", i, n, err)
		}
		if mt != websocket.TextMessage || len(b) != n || (n > 0 && (b[0] != byte('a'+i) || b[n-1] != byte('a'+i))) {
			t.Fatalf("message %d: type %d, %d bytes; want text, %d bytes of %q", i, mt, len(b), n, string(rune('a'+i)))
		}
	}
}
