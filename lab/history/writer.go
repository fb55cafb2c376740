package history

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/geolab/geolab/gateway/client"
)

// flushAt is the size at which a Writer hands its buffer to the underlying
// writer.
const flushAt = 256 << 10

// ErrWriterClosed is the Writer's error for a record written after Close.
var ErrWriterClosed = errors.New("history: record written after Close")

// Writer writes a history, one line per record. It is safe for concurrent
// use by any number of goroutines: each record is formatted and appended to
// a shared buffer under one short lock, so lines never interleave, and the
// buffer goes to the underlying writer in the order records were appended
// whenever it holds flushAt bytes (outside the lock that records take, so a
// slow disk delays only the records that fill the next buffer), on Flush
// and on Close.
//
// Writing a frame costs one validation pass over its bytes and a copy: the
// frame is already JSON and is written as is. Nothing is lost silently:
// the first error of the underlying writer (or a record written after
// Close) is kept, reported by Err, Flush and Close, and every record after
// it is dropped.
type Writer struct {
	start time.Time

	mu     sync.Mutex
	buf    []byte
	spare  []byte // the buffer the last write returned, reused
	err    error
	closed bool

	wmu sync.Mutex // serialises writes to w; taken while holding mu to keep order
	w   io.Writer
}

// NewWriter starts a history on w: it writes the meta record at once (t 0).
// start is the run's start on the monotonic clock: every record's t is its
// time minus start. w is not closed by the Writer.
func NewWriter(w io.Writer, start time.Time, meta Meta) (*Writer, error) {
	m, err := json.Marshal(meta)
	if err != nil {
		return nil, fmt.Errorf("history: meta: %w", err)
	}
	hw := &Writer{start: start, w: w, buf: make([]byte, 0, flushAt+4096)}
	hw.buf = append(hw.buf, `{"k":"meta","t":0`...)
	if len(m) > 2 {
		hw.buf = append(hw.buf, ',')
		hw.buf = append(hw.buf, m[1:]...)
	} else {
		hw.buf = append(hw.buf, '}')
	}
	hw.buf = append(hw.buf, '\n')
	return hw, nil
}

func (w *Writer) since(at time.Time) int64 { return at.Sub(w.start).Nanoseconds() }

// Frame records one frame a client sent or received; f.Time gives t. home
// is the client's home region. The frame's bytes are written as they are
// when they are one JSON object; otherwise (no v1 peer sends that) as a
// JSON string under "text", so that the line stays whole.
func (w *Writer) Frame(clientName, home string, f client.RawFrame) {
	t := w.since(f.Time)
	data := f.Data
	object := validObject(data)
	if object && bytes.IndexByte(data, '\n') >= 0 {
		var c bytes.Buffer
		if json.Compact(&c, data) == nil {
			data = c.Bytes()
		} else {
			object = false
		}
	}
	w.mu.Lock()
	if w.refuse() {
		w.mu.Unlock()
		return
	}
	b := append(w.buf, `{"k":"frame","t":`...)
	b = strconv.AppendInt(b, t, 10)
	b = append(b, `,"c":`...)
	b = appendString(b, clientName)
	b = append(b, `,"home":`...)
	b = appendString(b, home)
	b = append(b, `,"conn":`...)
	b = strconv.AppendInt(b, f.Conn, 10)
	if f.Dir == client.Out {
		b = append(b, `,"dir":"out"`...)
	} else {
		b = append(b, `,"dir":"in"`...)
	}
	if object {
		b = append(b, `,"f":`...)
		b = append(b, data...)
	} else {
		b = append(b, `,"text":`...)
		b = appendString(b, string(data))
	}
	b = append(b, "}\n"...)
	w.buf = b
	w.maybeFlush()
}

// State records a stage of a client's connection life (StateConnecting,
// StateConnected, StateDisconnected, StateClosed) at time at.
func (w *Writer) State(clientName string, conn int64, state, endpoint string, err error, at time.Time) {
	t := w.since(at)
	w.mu.Lock()
	if w.refuse() {
		w.mu.Unlock()
		return
	}
	b := append(w.buf, `{"k":"state","t":`...)
	b = strconv.AppendInt(b, t, 10)
	b = append(b, `,"c":`...)
	b = appendString(b, clientName)
	b = append(b, `,"conn":`...)
	b = strconv.AppendInt(b, conn, 10)
	b = append(b, `,"state":`...)
	b = appendString(b, state)
	if endpoint != "" {
		b = append(b, `,"endpoint":`...)
		b = appendString(b, endpoint)
	}
	if err != nil {
		b = append(b, `,"err":`...)
		b = appendString(b, err.Error())
	}
	w.buf = append(b, "}\n"...)
	w.maybeFlush()
}

// Fault records a fault injected or healed ("inject", "heal") at time at;
// id pairs the two.
func (w *Writer) Fault(id, action, kind, target string, args map[string]string, at time.Time) {
	t := w.since(at)
	w.mu.Lock()
	if w.refuse() {
		w.mu.Unlock()
		return
	}
	b := append(w.buf, `{"k":"fault","t":`...)
	b = strconv.AppendInt(b, t, 10)
	b = append(b, `,"id":`...)
	b = appendString(b, id)
	b = append(b, `,"action":`...)
	b = appendString(b, action)
	b = append(b, `,"kind":`...)
	b = appendString(b, kind)
	b = append(b, `,"target":`...)
	b = appendString(b, target)
	if len(args) > 0 {
		keys := make([]string, 0, len(args))
		for k := range args {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, `,"args":{`...)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, args[k])
		}
		b = append(b, '}')
	}
	w.buf = append(b, "}\n"...)
	w.maybeFlush()
}

// Lag records one replication-lag sample of the link that applies in region
// the events originating in from: seconds behind, events behind and the
// link's state (LagOK, LagWarn, LagAlert, LagDown). A seconds that is NaN
// or infinite is written as null (Read gives NaN back).
func (w *Writer) Lag(region, from string, seconds float64, events int64, state string, at time.Time) {
	t := w.since(at)
	w.mu.Lock()
	if w.refuse() {
		w.mu.Unlock()
		return
	}
	b := append(w.buf, `{"k":"lag","t":`...)
	b = strconv.AppendInt(b, t, 10)
	b = append(b, `,"region":`...)
	b = appendString(b, region)
	b = append(b, `,"from":`...)
	b = appendString(b, from)
	b = append(b, `,"seconds":`...)
	if math.IsNaN(seconds) || math.IsInf(seconds, 0) {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendFloat(b, seconds, 'g', -1, 64)
	}
	b = append(b, `,"events":`...)
	b = strconv.AppendInt(b, events, 10)
	if state != "" {
		b = append(b, `,"state":`...)
		b = appendString(b, state)
	}
	w.buf = append(b, "}\n"...)
	w.maybeFlush()
}

// End records that the run quiesced. lab/run writes it before closing the
// clients, so that only their closing states follow it.
func (w *Writer) End(at time.Time) {
	t := w.since(at)
	w.mu.Lock()
	if w.refuse() {
		w.mu.Unlock()
		return
	}
	b := append(w.buf, `{"k":"end","t":`...)
	b = strconv.AppendInt(b, t, 10)
	w.buf = append(b, "}\n"...)
	w.maybeFlush()
}

// refuse reports, with w.mu held, whether records are dropped (an earlier
// error, or Close); a record after Close becomes the error.
func (w *Writer) refuse() bool {
	if w.closed && w.err == nil {
		w.err = ErrWriterClosed
	}
	return w.err != nil
}

// maybeFlush is called with w.mu held and releases it.
func (w *Writer) maybeFlush() {
	if len(w.buf) < flushAt {
		w.mu.Unlock()
		return
	}
	w.cut()
}

// cut hands the buffer to the underlying writer: called with w.mu held, it
// releases it before writing, having taken w.wmu so that buffers are
// written in the order they were cut.
func (w *Writer) cut() {
	full := w.buf
	w.buf, w.spare = w.spare[:0], nil
	if cap(w.buf) == 0 {
		w.buf = make([]byte, 0, flushAt+4096)
	}
	w.wmu.Lock()
	w.mu.Unlock()
	var err error
	if len(full) > 0 {
		_, err = w.w.Write(full)
	}
	w.wmu.Unlock()
	w.mu.Lock()
	if err != nil && w.err == nil {
		w.err = fmt.Errorf("history: write: %w", err)
	}
	if w.spare == nil && cap(full) <= 2*(flushAt+4096) {
		w.spare = full[:0]
	}
	w.mu.Unlock()
}

// Flush writes every record recorded so far to the underlying writer and
// returns the Writer's first error.
func (w *Writer) Flush() error {
	w.mu.Lock()
	if w.err == nil {
		w.cut()
		w.mu.Lock()
	}
	err := w.err
	w.mu.Unlock()
	return err
}

// Close flushes and ends the Writer: a record written after it is dropped
// and becomes the Writer's error (ErrWriterClosed). It returns the first
// error, like Flush. It does not close the underlying writer.
func (w *Writer) Close() error {
	err := w.Flush()
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	return err
}

// Err returns the first error: of the underlying writer, or a record
// written after Close. nil means every record so far was accepted.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}
