package link

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"
)

// TestAgainRetriesOnlyARequestLostOnAClosedConnection: what the Toxiproxy
// client returned when its kept-alive connection and the API server's idle
// close crossed (EOF, "connection reset by peer", wrapped as net/http wraps
// them) is tried once more; an answer of the API (a status) or any other
// error is not, and a second failure is returned.
func TestAgainRetriesOnlyARequestLostOnAClosedConnection(t *testing.T) {
	post := func(err error) error {
		return &url.Error{Op: "Post", URL: "http://127.0.0.1:8474/proxies/lan.us-east.gw-1", Err: err}
	}
	reset := post(&net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)})
	cases := []struct {
		name  string
		first error
		calls int
	}{
		{"EOF", post(io.EOF), 2},
		{"unexpected EOF", post(io.ErrUnexpectedEOF), 2},
		{"connection reset by peer", reset, 2},
		{"success", nil, 1},
		{"an answer of the API", fmt.Errorf("Proxy.Save: HTTP 409: proxy already exists"), 1},
		{"connection refused", post(&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}), 1},
	}
	for _, tc := range cases {
		calls := 0
		err := again(func() error {
			calls++
			if calls == 1 {
				return tc.first
			}
			return nil
		})
		if calls != tc.calls || (tc.calls == 2 && err != nil) || (tc.calls == 1 && !errors.Is(err, tc.first)) {
			t.Errorf("%s: %d calls, error %v; want %d calls", tc.name, calls, err, tc.calls)
		}
	}
	calls := 0
	err := again(func() error { calls++; return post(io.EOF) })
	if calls != 2 || !errors.Is(err, io.EOF) {
		t.Errorf("two stale connections in a row: %d calls, error %v; want 2 calls and the second EOF", calls, err)
	}
}
