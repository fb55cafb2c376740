package history

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
)

// Part is one history to merge into another: an agent's history, whose
// records' t (nanoseconds since that history's own start) become
// t + Shift in the merged one.
type Part struct {
	Name  string // named in errors, e.g. "agent-2"
	R     io.Reader
	Shift int64
}

// Merge writes one history to w: meta first, then every record of every
// part except their meta records, each with its t shifted by its part's
// Shift, in order of the shifted t (stable: records with the same t keep
// the parts' order, then their order in their part). The parts are
// histories a Writer wrote: every record starts {"k":KIND,"t":N. A line
// that does not is an error naming the part and the line.
func Merge(w io.Writer, meta Meta, parts []Part) error {
	type rec struct {
		t    int64
		line []byte // from the t's digits on, without them: ,"c":...}
		kind string // {"k":"frame","t":
	}
	var recs []rec
	heads := map[string]string{} // one string per record head
	for _, p := range parts {
		sc := bufio.NewScanner(p.R)
		sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
		for n := 1; sc.Scan(); n++ {
			line := sc.Bytes()
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			kind, t, rest, err := splitT(line)
			if err != nil {
				return fmt.Errorf("history: merge %s line %d: %w", p.Name, n, err)
			}
			if string(kind) == `{"k":"meta","t":` {
				continue
			}
			k, ok := heads[string(kind)]
			if !ok {
				k = string(kind)
				heads[k] = k
			}
			recs = append(recs, rec{t: t + p.Shift, kind: k, line: slices.Clone(rest)})
		}
		if err := sc.Err(); err != nil {
			return fmt.Errorf("history: merge %s: %w", p.Name, err)
		}
	}
	slices.SortStableFunc(recs, func(a, b rec) int {
		switch {
		case a.t < b.t:
			return -1
		case a.t > b.t:
			return 1
		}
		return 0
	})
	bw := bufio.NewWriterSize(w, 256<<10)
	m, err := json.Marshal(meta)
	if err != nil {
		return fmt.Errorf("history: merge: meta: %w", err)
	}
	bw.WriteString(`{"k":"meta","t":0`)
	if len(m) > 2 {
		bw.WriteByte(',')
		bw.Write(m[1:])
	} else {
		bw.WriteByte('}')
	}
	bw.WriteByte('\n')
	var num []byte
	for _, r := range recs {
		bw.WriteString(r.kind)
		num = strconv.AppendInt(num[:0], r.t, 10)
		bw.Write(num)
		bw.Write(r.line)
		bw.WriteByte('\n')
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("history: merge: write: %w", err)
	}
	return nil
}

// splitT cuts a record line {"k":"KIND","t":N,... into its head up to and
// with "t":, N, and the rest after N.
func splitT(line []byte) (head []byte, t int64, rest []byte, err error) {
	const k = `{"k":"`
	if !bytes.HasPrefix(line, []byte(k)) {
		return nil, 0, nil, fmt.Errorf("a record must start with %s", k)
	}
	i := bytes.Index(line[len(k):], []byte(`","t":`))
	if i < 0 || bytes.IndexByte(line[len(k):len(k)+i], '"') >= 0 {
		return nil, 0, nil, fmt.Errorf(`a record must start {"k":KIND,"t":N`)
	}
	head = line[:len(k)+i+len(`","t":`)]
	j := len(head)
	if j < len(line) && line[j] == '-' {
		j++
	}
	for j < len(line) && line[j] >= '0' && line[j] <= '9' {
		j++
	}
	t, err = strconv.ParseInt(string(line[len(head):j]), 10, 64)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("t: %w", err)
	}
	return head, t, line[j:], nil
}
