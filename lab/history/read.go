package history

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"unsafe"

	"github.com/geolab/geolab/gateway/client"
)

// ErrTruncated is wrapped by the error Read returns when the last line is
// incomplete (no newline at its end and not a complete record): the run was
// killed while writing. The History returned with it holds every record
// before that line and can still be checked.
var ErrTruncated = errors.New("truncated last line (the run was probably killed mid-write)")

// LineError is a line of a history file that cannot be read.
type LineError struct {
	Line      int    // 1-based
	Column    int    // 1-based byte offset in the line, 0 when not about one place
	Msg       string // what is wrong
	truncated bool
}

func (e *LineError) Error() string {
	msg := e.Msg
	if e.truncated {
		msg = ErrTruncated.Error() + ": " + msg
	}
	if e.Column > 0 {
		return fmt.Sprintf("history: line %d, column %d: %s", e.Line, e.Column, msg)
	}
	return fmt.Sprintf("history: line %d: %s", e.Line, msg)
}

// Is makes errors.Is(err, ErrTruncated) true for a truncated last line.
func (e *LineError) Is(target error) bool { return e.truncated && target == ErrTruncated }

// Load reads the history file at path (see Read).
func Load(path string) (*History, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	h, err := parse(data)
	if err != nil {
		err = fmt.Errorf("%s: %w", path, err)
	}
	return h, err
}

// Read reads a whole history. The first line must be the meta record; blank
// lines are ignored, and so are fields a record does not need (the format
// grows by adding). Any other problem — bad JSON, an unknown kind, a
// missing or repeated meta, a required field missing or of the wrong kind,
// a frame that is not a JSON object — is a *LineError naming the line.
// A truncated last line returns the records before it together with an
// error wrapping ErrTruncated; every other error returns a nil History.
//
// Events come back sorted by t (stable), since concurrent clients may write
// their records a little out of time order. The frames' bytes (Event.Raw)
// are slices of one buffer holding the whole input: do not modify them.
func Read(r io.Reader) (*History, error) {
	data, err := readAll(r)
	if err != nil {
		return nil, fmt.Errorf("history: read: %w", err)
	}
	return parse(data)
}

// readAll reads r to its end into one buffer, sized at once when r can say
// how much it holds (a history is hundreds of MB: growing a buffer by
// doubling would copy it several times).
func readAll(r io.Reader) ([]byte, error) {
	size := 64 << 10
	switch v := r.(type) {
	case interface{ Len() int }: // bytes.Reader, bytes.Buffer, strings.Reader
		size = v.Len() + 1
	case interface{ Stat() (os.FileInfo, error) }:
		if fi, err := v.Stat(); err == nil && fi.Mode().IsRegular() {
			size = int(fi.Size()) + 1
		}
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, cap(buf))
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// parser holds what Read keeps across lines.
type parser struct {
	h    History
	meta bool
	s    scanner
}

// parse reads data, which it owns from now on: the strings and Raw slices
// of the events alias it (see alias).
func parse(data []byte) (*History, error) {
	p := &parser{}
	p.h.Events = make([]Event, 0, bytes.Count(data, []byte{'\n'})+1)
	line := 0
	for len(data) > 0 {
		line++
		n := bytes.IndexByte(data, '\n')
		last := n < 0
		if last {
			n = len(data)
		}
		text := data[:n:n]
		data = data[min(n+1, len(data)):]
		if len(bytes.TrimSpace(text)) == 0 {
			continue
		}
		if err := p.line(text); err != nil {
			le := &LineError{Line: line, Msg: err.Error()}
			var se *syntaxError
			if errors.As(err, &se) {
				le.Column = se.off + 1
				le.truncated = last && se.end
			}
			if le.truncated && p.meta {
				sortByTime(p.h.Events)
				return &p.h, le
			}
			return nil, le
		}
	}
	if !p.meta {
		return nil, &LineError{Line: line + 1, Msg: "missing meta record: the history is empty"}
	}
	sortByTime(p.h.Events)
	return &p.h, nil
}

// record holds the fields of one line that are not stored in Event.
type record struct {
	k                                      []byte
	t                                      int64
	hasT, hasC, hasConn, hasDir, hasF      bool
	text                                   []byte
	hasText                                bool
	state, endpoint, err                   string
	id, action, kind, target, region, from string
	args                                   map[string]string
	seconds                                float64
	hasSeconds                             bool
	events                                 int64
}

// alias returns b as a string without copying it. Every b it is given is
// either a slice of the input, which parse owns and never modifies, or a
// buffer the scanner allocated for one decoded string: both live as long
// as the string and never change. This saves an allocation and a copy for
// each of the ~10 strings of each of a history's million records.
func alias(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// line reads one non-blank line.
func (p *parser) line(text []byte) error {
	s := &p.s
	*s = scanner{b: text}
	var rec record
	p.h.Events = append(p.h.Events, Event{})
	ev := &p.h.Events[len(p.h.Events)-1]
	keep, err := p.record(ev, &rec)
	if !keep {
		p.h.Events = p.h.Events[:len(p.h.Events)-1]
	}
	return err
}

// record decodes one line into ev; keep is false when ev holds nothing (an
// error, or the meta record).
func (p *parser) record(ev *Event, rec *record) (keep bool, err error) {
	s := &p.s
	text := s.b
	if err := s.begin(); err != nil {
		return false, err
	}
	for first := true; ; first = false {
		key, done, err := s.key(first)
		if err != nil {
			return false, err
		}
		if done {
			break
		}
		if err := p.field(ev, rec, key); err != nil {
			return false, err
		}
	}
	if err := s.end(); err != nil {
		return false, err
	}
	if rec.k == nil {
		return false, errors.New(`record has no "k" (kind)`)
	}
	if string(rec.k) == "meta" {
		return false, p.metaLine(text)
	}
	if !p.meta {
		return false, fmt.Errorf("the first record must be meta, found %q", rec.k)
	}
	if !rec.hasT {
		return false, fmt.Errorf(`%s record has no "t"`, rec.k)
	}
	ev.T = rec.t
	switch string(rec.k) {
	case "frame":
		ev.Kind = KindFrame
		if !rec.hasC || !rec.hasConn || !rec.hasDir {
			return false, errors.New(`frame record needs "c", "conn" and "dir"`)
		}
		switch {
		case rec.hasF:
		case rec.hasText:
			*ev = Event{T: ev.T, Kind: KindFrame, Client: ev.Client, Conn: ev.Conn, Home: ev.Home, Dir: ev.Dir,
				Raw: rec.text, NotJSON: true}
		default:
			return false, errors.New(`frame record has no "f" (the frame) nor "text"`)
		}
	case "state":
		ev.Kind = KindState
		if !rec.hasC || rec.state == "" {
			return false, errors.New(`state record needs "c" and "state"`)
		}
		ev.State = &State{State: rec.state, Endpoint: rec.endpoint, Err: rec.err}
	case "fault":
		ev.Kind = KindFault
		if rec.id == "" || rec.action == "" {
			return false, errors.New(`fault record needs "id" and "action"`)
		}
		ev.Fault = &Fault{ID: rec.id, Action: rec.action, Kind: rec.kind, Target: rec.target, Args: rec.args}
	case "lag":
		ev.Kind = KindLag
		if rec.region == "" || rec.from == "" || !rec.hasSeconds {
			return false, errors.New(`lag record needs "region", "from" and "seconds"`)
		}
		ev.Lag = &Lag{Region: rec.region, From: rec.from, Seconds: rec.seconds, Events: rec.events, State: rec.state}
	case "end":
		ev.Kind = KindEnd
	default:
		return false, fmt.Errorf("unknown record kind %q (want meta, frame, state, fault, lag or end)", rec.k)
	}
	if ev.Kind != KindFrame && ev.Kind != KindState {
		ev.Client, ev.Conn = "", 0
	}
	if ev.Kind != KindFrame {
		*ev = Event{T: ev.T, Kind: ev.Kind, Client: ev.Client, Conn: ev.Conn, State: ev.State, Fault: ev.Fault, Lag: ev.Lag}
	}
	return true, nil
}

// field reads the value of one top-level key. Every key has one JSON kind
// whatever the record's kind, so a value can be decoded before "k" is known.
func (p *parser) field(ev *Event, rec *record, key []byte) error {
	s := &p.s
	var err error
	str := func() (string, error) {
		if s.isNull() {
			return "", nil
		}
		b, err := s.str()
		if err != nil {
			return "", err
		}
		return alias(b), nil
	}
	switch string(key) {
	case "k":
		var b []byte
		if b, err = s.str(); err == nil {
			rec.k = b
		}
	case "t":
		rec.t, err = s.int()
		rec.hasT = true
	case "c":
		ev.Client, err = str()
		rec.hasC = ev.Client != ""
	case "home":
		ev.Home, err = str()
	case "conn":
		ev.Conn, err = s.int()
		rec.hasConn = true
	case "dir":
		var b []byte
		if b, err = s.str(); err == nil {
			switch string(b) {
			case "in":
				ev.Dir = client.In
			case "out":
				ev.Dir = client.Out
			default:
				return fmt.Errorf(`"dir" is %q: want "in" or "out"`, b)
			}
			rec.hasDir = true
		}
	case "f":
		if c := s.peek(); c != '{' {
			if c == 0 {
				return s.eof()
			}
			return s.fail(`"f" is not a JSON object (found %s): a frame must be one`, describe(c))
		}
		start := s.i
		if err = p.frame(ev); err == nil {
			ev.Raw = s.b[start:s.i:s.i]
			rec.hasF = true
		}
	case "text":
		var b []byte
		if b, err = s.str(); err == nil {
			rec.text, rec.hasText = b, true
		}
	case "state":
		rec.state, err = str()
	case "endpoint":
		rec.endpoint, err = str()
	case "err":
		rec.err, err = str()
	case "id":
		rec.id, err = str()
	case "action":
		rec.action, err = str()
	case "kind":
		rec.kind, err = str()
	case "target":
		rec.target, err = str()
	case "region":
		rec.region, err = str()
	case "from":
		rec.from, err = str()
	case "args":
		rec.args, err = p.args()
	case "seconds":
		rec.hasSeconds = true
		if s.isNull() {
			rec.seconds = math.NaN()
			return nil
		}
		var t []byte
		if t, err = s.num(); err == nil {
			rec.seconds, err = strconv.ParseFloat(string(t), 64)
			if err != nil {
				return fmt.Errorf(`"seconds": %w`, err)
			}
		}
	case "events":
		rec.events, err = s.int()
	default:
		err = s.skip()
	}
	if err != nil {
		var se *syntaxError
		if errors.As(err, &se) {
			return &syntaxError{off: se.off, end: se.end, msg: fmt.Sprintf("%q: %s", key, se.msg)}
		}
		return err
	}
	return nil
}

// args reads a fault's args: an object of strings.
func (p *parser) args() (map[string]string, error) {
	s := &p.s
	if s.isNull() {
		return nil, nil
	}
	if err := s.begin(); err != nil {
		return nil, err
	}
	m := map[string]string{}
	for first := true; ; first = false {
		key, done, err := s.key(first)
		if err != nil {
			return nil, err
		}
		if done {
			return m, nil
		}
		v, err := s.str()
		if err != nil {
			return nil, err
		}
		m[alias(key)] = alias(v)
	}
}

// frame decodes the fields the checker needs from a frame object, skipping
// the rest. A field of the wrong JSON kind is left zero: the frame is kept
// verbatim in Raw, and a peer that sends such a thing is for the checker
// (or a spec) to notice, not a reason to refuse the history.
func (p *parser) frame(ev *Event) error {
	s := &p.s
	if err := s.begin(); err != nil {
		return err
	}
	for first := true; ; first = false {
		key, done, err := s.key(first)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		var dst *string
		switch string(key) {
		case "type":
			dst = &ev.Type
		case "room":
			dst = &ev.Room
		case "id":
			dst = &ev.ID
		case "origin":
			dst = &ev.Origin
		case "epoch":
			dst = &ev.Epoch
		case "reason":
			dst = &ev.Reason
		case "event":
			dst = &ev.EventID
		case "ref":
			dst = &ev.Ref
		case "code":
			dst = &ev.Code
		case "region":
			dst = &ev.Region
		case "node":
			dst = &ev.Node
		case "oseq":
			if c := s.peek(); c == '-' || c >= '0' && c <= '9' {
				t, err := s.num()
				if err != nil {
					return err
				}
				ev.Oseq, _ = parseUint(t)
				continue
			}
		case "recovered":
			switch s.peek() {
			case 't':
				if err := s.literal("true"); err != nil {
					return err
				}
				ev.Recovered = true
				continue
			case 'f':
				if err := s.literal("false"); err != nil {
					return err
				}
				ev.Recovered = false
				continue
			}
		case "since":
			ev.Since = !s.isNull()
			if !ev.Since {
				continue
			}
		}
		if dst != nil && s.peek() == '"' {
			b, err := s.str()
			if err != nil {
				return err
			}
			*dst = alias(b)
			continue
		}
		if err := s.skipDepth(1); err != nil {
			return err
		}
	}
}

// metaLine reads the meta record with encoding/json: it comes once.
func (p *parser) metaLine(text []byte) error {
	if p.meta {
		return errors.New("a second meta record: meta comes once, first")
	}
	if len(p.h.Events) > 1 { // the slot line() made for this line
		return errors.New("meta record after other records: meta comes first")
	}
	if err := json.Unmarshal(text, &p.h.Meta); err != nil {
		return fmt.Errorf("meta record: %w", err)
	}
	p.meta = true
	return nil
}

// sortByTime sorts events by T, stably. Histories come almost sorted
// (concurrent writers swap neighbours), so it first tries an insertion sort
// with a bounded budget of moves and falls back to a stable sort of indexes.
func sortByTime(ev []Event) {
	budget := 64*len(ev) + 1024
	for i := 1; i < len(ev); i++ {
		if ev[i].T >= ev[i-1].T {
			continue
		}
		j := i
		for j > 0 && ev[j-1].T > ev[i].T {
			j--
		}
		if budget -= i - j; budget < 0 {
			sortIndexes(ev)
			return
		}
		x := ev[i]
		copy(ev[j+1:i+1], ev[j:i])
		ev[j] = x
	}
}

func sortIndexes(ev []Event) {
	idx := make([]int32, len(ev))
	for i := range idx {
		idx[i] = int32(i)
	}
	slices.SortStableFunc(idx, func(a, b int32) int {
		switch ta, tb := ev[a].T, ev[b].T; {
		case ta < tb:
			return -1
		case ta > tb:
			return 1
		}
		return 0
	})
	sorted := make([]Event, len(ev))
	for i, k := range idx {
		sorted[i] = ev[k]
	}
	copy(ev, sorted)
}
