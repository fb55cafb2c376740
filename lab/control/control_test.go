package control

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The control API has no authentication, only a loopback address. A web page
// in a local browser can POST to it cross-origin as text/plain or as a form
// without a preflight: every POST is refused unless declared
// application/json, which a browser sends cross-origin only after a CORS
// preflight this API never grants.
func TestPostsMustBeDeclaredJSON(t *testing.T) {
	s, err := Serve(nil) // POST /down touches no lab
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	c := &http.Client{Timeout: 5 * time.Second}
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""} {
		for _, path := range []string{"/down", "/faults", "/heal"} {
			req, err := http.NewRequest(http.MethodPost, s.URL()+path, strings.NewReader(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			if ct != "" {
				req.Header.Set("Content-Type", ct)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body struct{ Error string }
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnsupportedMediaType || !strings.Contains(body.Error, "application/json") {
				t.Errorf("POST %s as %q: %d %q, want 415 naming application/json", path, ct, resp.StatusCode, body.Error)
			}
		}
	}
	select {
	case <-s.Down():
		t.Fatal("a POST /down that was not JSON took the lab down")
	default:
	}
	resp, err := c.Post(s.URL()+"/down", "application/json; charset=utf-8", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /down as JSON: %d, want 200", resp.StatusCode)
	}
	select {
	case <-s.Down():
	case <-time.After(5 * time.Second):
		t.Fatal("POST /down as JSON did not take the lab down")
	}
}
