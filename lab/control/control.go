// Package control is how `geolab status`, `geolab fault`, `geolab heal` and
// `geolab down` reach the lab that `geolab up` runs: a small JSON API on a
// loopback port, found through a state file.
//
//	geolab fault … ─▶ state file ─▶ POST /faults ─▶ lab (in `geolab up`)
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/geolab/geolab/internal/httpserve"
	"github.com/geolab/geolab/lab"
	"github.com/geolab/geolab/lab/fault"
)

// State is what the state file records of a running lab.
type State struct {
	Pid      int       `json:"pid"`
	Control  string    `json:"control"` // http://127.0.0.1:PORT
	Topology string    `json:"topology"`
	Started  time.Time `json:"started"`
}

// DefaultStatePath is where `geolab up` writes its state unless told:
// $GEOLAB_STATE, else geolab/lab.json under the temporary directory.
func DefaultStatePath() string {
	if p := os.Getenv("GEOLAB_STATE"); p != "" {
		return p
	}
	return filepath.Join(os.TempDir(), "geolab", "lab.json")
}

// Server serves the control API of one lab.
type Server struct {
	lab  *lab.Lab
	srv  *http.Server
	addr string
	down chan struct{}
}

// Serve starts the API on a free loopback port. Down is closed when a client
// asks the lab to go down.
func Serve(l *lab.Lab) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("control: listen: %w", err)
	}
	s := &Server{lab: l, addr: ln.Addr().String(), down: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, l.Status(r.Context()))
	})
	mux.HandleFunc("POST /faults", jsonOnly(s.inject))
	mux.HandleFunc("POST /heal", jsonOnly(s.heal))
	mux.HandleFunc("POST /down", jsonOnly(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "going down"})
		select {
		case <-s.down:
		default:
			close(s.down)
		}
	}))
	s.srv = httpserve.New(mux)
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// URL is the API's base URL.
func (s *Server) URL() string { return "http://" + s.addr }

// Down is closed when `geolab down` asked the lab to stop.
func (s *Server) Down() <-chan struct{} { return s.down }

// Close stops serving.
func (s *Server) Close() error { return s.srv.Close() }

func (s *Server) inject(w http.ResponseWriter, r *http.Request) {
	var spec fault.Spec
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad fault spec: " + err.Error()})
		return
	}
	a, err := s.lab.Inject(r.Context(), spec)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, a)
}

func (s *Server) heal(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 60*time.Second)
	defer cancel()
	id := r.URL.Query().Get("id")
	before := s.lab.Faults().List()
	var err error
	if id != "" {
		err = s.lab.Faults().Heal(ctx, id)
	} else {
		err = s.lab.Faults().HealAll(ctx)
	}
	healed := []string{}
	for _, a := range before {
		if id == "" || a.ID == id {
			healed = append(healed, a.ID)
		}
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": err.Error(), "healed": healed})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"healed": healed})
}

// jsonOnly refuses a POST whose body is not declared application/json with
// 415. The API has no authentication, only a loopback address; this is what
// keeps a web page in a local browser from driving it: a page can send a
// cross-origin POST as text/plain or a form without asking, but one declared
// application/json only after a CORS preflight, which this API never grants.
func jsonOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			writeJSON(w, http.StatusUnsupportedMediaType, map[string]string{
				"error": fmt.Sprintf("control: %s %s takes Content-Type application/json, got %q", r.Method, r.URL.Path, r.Header.Get("Content-Type"))})
			return
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// WriteState records st at path (creating its directory).
func WriteState(path string, st State) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("control: state file: %w", err)
	}
	b, _ := json.MarshalIndent(st, "", "  ")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("control: state file: %w", err)
	}
	return nil
}

// ErrNoLab says that no lab is running where the state file points.
var ErrNoLab = errors.New("no lab is running")

// ErrNoStateFile is wrapped, beside ErrNoLab, when the state file is not
// there at all.
var ErrNoStateFile = errors.New("no state file")

// Client talks to a running lab's control API.
type Client struct {
	State State
	http  http.Client
}

// Open reads the state file and checks that its lab still runs.
func Open(path string) (*Client, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w (%w %s)", ErrNoLab, ErrNoStateFile, path)
	}
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil || st.Control == "" {
		return nil, fmt.Errorf("control: state file %s is not a geolab lab state: %v", path, err)
	}
	if st.Pid <= 0 || syscall.Kill(st.Pid, 0) != nil {
		return nil, fmt.Errorf("%w (the lab of %s, pid %d, has exited; remove the stale file)", ErrNoLab, path, st.Pid)
	}
	return &Client{State: st, http: http.Client{Timeout: 90 * time.Second}}, nil
}

// Status fetches the lab's status.
func (c *Client) Status(ctx context.Context) (lab.Status, error) {
	var st lab.Status
	return st, c.do(ctx, http.MethodGet, "/status", nil, &st)
}

// Inject asks the lab to inject a fault.
func (c *Client) Inject(ctx context.Context, s fault.Spec) (fault.Active, error) {
	var a fault.Active
	return a, c.do(ctx, http.MethodPost, "/faults", s, &a)
}

// Heal heals fault id, or every active fault when id is "".
func (c *Client) Heal(ctx context.Context, id string) ([]string, error) {
	var out struct {
		Healed []string `json:"healed"`
	}
	path := "/heal"
	if id != "" {
		path += "?id=" + id
	}
	err := c.do(ctx, http.MethodPost, path, nil, &out)
	return out.Healed, err
}

// Down asks the lab to stop and waits (up to bound) for its process to exit.
func (c *Client) Down(ctx context.Context, bound time.Duration) error {
	if err := c.do(ctx, http.MethodPost, "/down", nil, nil); err != nil {
		return err
	}
	end := time.Now().Add(bound)
	for syscall.Kill(c.State.Pid, 0) == nil {
		if time.Now().After(end) {
			return fmt.Errorf("control: lab pid %d still running after %s", c.State.Pid, bound)
		}
		time.Sleep(50 * time.Millisecond) // waiting for another process to exit
	}
	return nil
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(ctx, method, c.State.Control+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("control: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("control: %s %s: %s", method, path, resp.Status)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("control: %s %s: bad answer: %w", method, path, err)
		}
	}
	return nil
}
