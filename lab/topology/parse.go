package topology

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// A file is read in two passes, so that the rules live in one place:
//
//	YAML ─► yaml.Node ─decode─► Topology (+ line of every field) ─Validate─► errors with lines
//
// decode checks the shape (keys, kinds, required fields) and applies the
// defaults; Validate checks the values, the same for a file and for a
// Topology built in Go; the field paths it names are looked up in the lines
// decode recorded.

// Error is one thing wrong with a topology: where (file, line, field path
// such as "regions[1].gateways", indices from 0) and what. Parse and Load
// return every Error of a file joined with errors.Join, in line order; use
// errors.As to reach the first one.
type Error struct {
	File  string // set by Load
	Line  int    // 1-based; 0 when unknown (a Topology built in Go, an empty file)
	Field string // "" when the error is about the whole file
	Msg   string
	// FirstField and FirstLine point at the earlier occurrence when
	// something is given twice (a key, a region, an rtt pair).
	FirstField string
	FirstLine  int
}

// Error formats e as file:line: field: message (line N: … without a file).
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	switch {
	case e.FirstField != "" && e.FirstLine > 0:
		fmt.Fprintf(&b, " (first at line %d, %s)", e.FirstLine, e.FirstField)
	case e.FirstField != "":
		fmt.Fprintf(&b, " (first at %s)", e.FirstField)
	}
	return b.String()
}

// Parse reads a topology file's contents, applies the defaults and checks
// it. A bad file yields every error found, each naming the line and the
// field (see Error); a Topology returned always passes Validate.
func Parse(data []byte) (*Topology, error) { return parse(data, "") }

// Load reads and parses the topology file at path; its errors read
// path:line: field: message.
func Load(path string) (*Topology, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("topology: %w", err)
	}
	return parse(data, path)
}

func parse(data []byte, file string) (*Topology, error) {
	d := &decoder{line: map[string]int{}, written: map[string]string{}}
	if root := d.document(data); root != nil {
		t := d.topology(root)
		t.validate(d.locate)
		if len(d.errs) == 0 {
			return t, nil
		}
	}
	sort.SliceStable(d.errs, func(i, j int) bool { return d.errs[i].Line < d.errs[j].Line })
	errs := make([]error, len(d.errs))
	for i, e := range d.errs {
		e.File = file
		errs[i] = e
	}
	return nil, errors.Join(errs...)
}

// decoder turns a yaml.Node tree into a Topology, recording where each
// field is and what is wrong with the file's shape.
type decoder struct {
	errs []*Error
	// line maps a field path, as written, to its line.
	line map[string]int
	// written maps the path of an rtt pair as Validate names it
	// (rtt.A.B, A < B) to the path as the file wrote it.
	written map[string]string
	// shape holds the fields decode found wrong, so that Validate does not
	// report them a second time (a bad "gateways" also fails its range).
	shape []string
}

// fail records a shape error at field.
func (d *decoder) fail(line int, field, format string, args ...any) {
	d.errs = append(d.errs, &Error{Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
	d.shape = append(d.shape, field)
}

// lineOf is the line of field, or of its nearest recorded parent.
func (d *decoder) lineOf(field string) int {
	for {
		if l, ok := d.line[field]; ok {
			return l
		}
		i := strings.LastIndexAny(field, ".[")
		if i < 0 {
			return d.line[""]
		}
		field = field[:i]
	}
}

// asWritten turns a Validate field path into the file's: rtt.A.B… into the
// order the file gave the pair in.
func (d *decoder) asWritten(field string) string {
	best := ""
	for canon := range d.written {
		if (field == canon || strings.HasPrefix(field, canon+".")) && len(canon) > len(best) {
			best = canon
		}
	}
	if best == "" {
		return field
	}
	return d.written[best] + field[len(best):]
}

// locate adds the lines to an error of Validate, unless decode already
// reported that field.
func (d *decoder) locate(e *Error) {
	e.Field = d.asWritten(e.Field)
	for _, f := range d.shape {
		if e.Field == f || strings.HasPrefix(e.Field, f+".") || strings.HasPrefix(e.Field, f+"[") {
			return
		}
	}
	e.Line = d.lineOf(e.Field)
	if e.FirstField != "" {
		e.FirstField = d.asWritten(e.FirstField)
		e.FirstLine = d.lineOf(e.FirstField)
	}
	d.errs = append(d.errs, e)
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// document reads the one YAML document of data and returns its root
// mapping, or nil after recording why there is none.
func (d *decoder) document(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			d.fail(0, "", "the file is empty: want a topology (docs/topology.md)")
		} else {
			d.syntax(err)
		}
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		d.fail(next.Line, "", "a second YAML document: one topology per file")
		return nil
	case err != io.EOF:
		d.syntax(err)
		return nil
	}
	root := resolve(&doc)
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = resolve(root.Content[0])
	}
	if isNull(root) {
		d.fail(0, "", "the file is empty: want a topology (docs/topology.md)")
		return nil
	}
	if root.Kind != yaml.MappingNode {
		d.fail(root.Line, "", "the file is %s: want a mapping with keys %s", describe(root), strings.Join(topKeys, ", "))
		return nil
	}
	d.line[""] = root.Line
	return root
}

// syntax records a YAML syntax error, with its line when YAML gives one.
func (d *decoder) syntax(err error) {
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		d.fail(n, "", "invalid YAML: %s", m[2])
		return
	}
	d.fail(0, "", "invalid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
}

// The keys of each mapping, in the order docs/topology.md lists them.
var (
	topKeys      = []string{"name", "source", "regions", "rtt", "intra_region", "lan", "clients", "resolver"}
	regionKeys   = []string{"name", "gateways", "redis", "federate"}
	redisKeys    = []string{"mode", "shards", "replicas", "persistence", "tls", "acl", "durability"}
	linkKeys     = []string{"ms", "jitter_ms"}
	resolverKeys = []string{"ttl", "health_interval"}
)

// entry is one key: value of a mapping.
type entry struct {
	key  string
	path string // field path of the value
	line int    // line of the key
	val  *yaml.Node
}

// mapping returns the entries of n, a mapping, recording their lines. With
// allowed it reports keys outside it; it always reports a key given twice.
// ok is false (and the error recorded) when n is not a mapping.
func (d *decoder) mapping(n *yaml.Node, path string, allowed []string) (entries []entry, ok bool) {
	line, n := n.Line, resolve(n)
	if n.Kind != yaml.MappingNode {
		d.fail(line, path, "want a mapping, got %s", describe(n))
		return nil, false
	}
	seen := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.fail(k.Line, path, "a key must be a plain name, got %s", describe(k))
			continue
		}
		p := join(path, k.Value)
		if allowed != nil && !slices.Contains(allowed, k.Value) {
			d.fail(k.Line, p, "unknown key %q (allowed: %s)", k.Value, strings.Join(allowed, ", "))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errs = append(d.errs, &Error{Line: k.Line, Field: p, Msg: fmt.Sprintf("key %q given twice", k.Value), FirstField: first, FirstLine: d.line[first]})
			d.shape = append(d.shape, p)
			continue
		}
		seen[k.Value] = p
		d.line[p] = k.Line
		entries = append(entries, entry{key: k.Value, path: p, line: k.Line, val: v})
	}
	return entries, true
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// topology decodes the root mapping, applying the defaults.
func (d *decoder) topology(root *yaml.Node) *Topology {
	t := &Topology{
		RTT:         map[Pair]Link{},
		IntraRegion: Link{RTT: DefaultIntraRegionRTT},
		Resolver:    Resolver{TTL: DefaultTTL, HealthInterval: DefaultHealthInterval},
	}
	entries, _ := d.mapping(root, "", topKeys)
	given := map[string]bool{}
	for _, e := range entries {
		given[e.key] = true
		if isNull(e.val) { // "key:" with nothing is the same as no key
			continue
		}
		switch e.key {
		case "name":
			t.Name, _ = d.str(e.val, e.path)
		case "source":
			t.Source, _ = d.str(e.val, e.path)
		case "regions":
			t.Regions = d.regions(e.val, e.path)
		case "rtt":
			d.rtt(e.val, e.path, t.RTT)
		case "intra_region":
			t.IntraRegion = d.link(e.val, e.path)
		case "lan":
			t.LAN = d.link(e.val, e.path)
		case "clients":
			t.Clients = d.clients(e.val, e.path)
		case "resolver":
			t.Resolver = d.resolver(e.val, e.path, t.Resolver)
		}
	}
	for _, k := range []string{"name", "source", "regions"} {
		d.required(given, entries, "", k)
	}
	if t.Clients == nil { // default: one client share per region
		t.Clients = map[string]float64{}
		for _, r := range t.Regions {
			if r.Name != "" {
				t.Clients[r.Name] = 1
			}
		}
	}
	return t
}

// required reports key of the mapping at path when it is missing or empty.
func (d *decoder) required(given map[string]bool, entries []entry, path, key string) {
	p := join(path, key)
	switch i := slices.IndexFunc(entries, func(e entry) bool { return e.key == key }); {
	case !given[key]:
		d.fail(d.lineOf(path), p, "required, but missing")
	case i >= 0 && isNull(entries[i].val):
		d.fail(entries[i].line, p, "required, but empty")
	}
}

// regions decodes the list of regions; a bad item still yields a Region,
// so that indices stay those of the file.
func (d *decoder) regions(n *yaml.Node, path string) []Region {
	line, n := n.Line, resolve(n)
	if n.Kind != yaml.SequenceNode {
		d.fail(line, path, "want a list of regions, got %s", describe(n))
		return nil
	}
	out := make([]Region, 0, len(n.Content))
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		d.line[p] = item.Line
		out = append(out, d.region(item, p))
	}
	return out
}

func (d *decoder) region(n *yaml.Node, path string) Region {
	r := Region{Gateways: DefaultGateways, Redis: Redis{Mode: RedisStandalone}}
	entries, ok := d.mapping(n, path, regionKeys)
	if !ok {
		return r
	}
	given := map[string]bool{}
	for _, e := range entries {
		given[e.key] = true
		if isNull(e.val) {
			continue
		}
		switch e.key {
		case "name":
			r.Name, _ = d.str(e.val, e.path)
		case "gateways":
			r.Gateways, _ = d.integer(e.val, e.path)
		case "redis":
			r.Redis = d.redis(e.val, e.path, r.Redis)
		case "federate":
			r.Federate = d.patterns(e.val, e.path)
		}
	}
	d.required(given, entries, path, "name")
	return r
}

// redis decodes a region's redis. A cluster that leaves shards or replicas
// out gets DefaultShards and DefaultReplicas; shards or replicas given to a
// standalone region are an error here, where the line is known (Validate
// reports only a value other than 0).
func (d *decoder) redis(n *yaml.Node, path string, r Redis) Redis {
	entries, _ := d.mapping(n, path, redisKeys)
	given := map[string]entry{}
	for _, e := range entries {
		if isNull(e.val) {
			continue
		}
		given[e.key] = e
		switch e.key {
		case "mode":
			r.Mode, _ = d.str(e.val, e.path)
		case "shards":
			r.Shards, _ = d.integer(e.val, e.path)
		case "replicas":
			r.Replicas, _ = d.integer(e.val, e.path)
		case "persistence":
			r.Persistence, _ = d.boolean(e.val, e.path)
		case "tls":
			r.TLS, _ = d.boolean(e.val, e.path)
		case "acl":
			r.ACL, _ = d.boolean(e.val, e.path)
		case "durability":
			r.Durability, _ = d.str(e.val, e.path)
		}
	}
	for _, f := range []struct {
		key string
		n   *int
		def int
	}{{"shards", &r.Shards, DefaultShards}, {"replicas", &r.Replicas, DefaultReplicas}} {
		e, ok := given[f.key]
		switch {
		case r.Mode == RedisCluster && !ok:
			*f.n = f.def
		case r.Mode == RedisStandalone && ok:
			d.fail(e.line, e.path, "applies to mode cluster only (this region's mode is standalone; give mode: cluster)")
		}
	}
	return r
}

func (d *decoder) patterns(n *yaml.Node, path string) []string {
	line, n := n.Line, resolve(n)
	if n.Kind != yaml.SequenceNode {
		d.fail(line, path, `want a list of room patterns such as ["tenant:*"], got %s`, describe(n))
		return nil
	}
	out := make([]string, len(n.Content))
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		d.line[p] = item.Line
		out[i], _ = d.str(item, p)
	}
	return out
}

// rtt decodes the matrix into m: region → region → link, each unordered
// pair once.
func (d *decoder) rtt(n *yaml.Node, path string, m map[Pair]Link) {
	outer, _ := d.mapping(n, path, nil)
	for _, a := range outer {
		if isNull(a.val) {
			continue
		}
		inner, _ := d.mapping(a.val, a.path, nil)
		for _, b := range inner {
			p := MakePair(a.key, b.key)
			canon := pairField(p)
			if first, dup := d.written[canon]; dup {
				d.errs = append(d.errs, &Error{Line: b.line, Field: b.path,
					Msg:        fmt.Sprintf("the pair %s–%s is given twice: give each pair once, in either order", a.key, b.key),
					FirstField: first, FirstLine: d.line[first]})
				d.shape = append(d.shape, b.path)
				continue
			}
			d.written[canon] = b.path
			// A bad entry still counts as given, so the pair is not also
			// reported missing.
			m[p] = d.link(b.val, b.path)
		}
	}
}

// link decodes {ms, jitter_ms}; ms is required.
func (d *decoder) link(n *yaml.Node, path string) Link {
	var l Link
	entries, ok := d.mapping(n, path, linkKeys)
	if !ok {
		return l
	}
	given := map[string]bool{}
	for _, e := range entries {
		given[e.key] = true
		if isNull(e.val) {
			continue
		}
		switch e.key {
		case "ms":
			l.RTT, _ = d.millis(e.val, e.path)
		case "jitter_ms":
			l.Jitter, _ = d.millis(e.val, e.path)
		}
	}
	d.required(given, entries, path, "ms")
	return l
}

func (d *decoder) clients(n *yaml.Node, path string) map[string]float64 {
	entries, ok := d.mapping(n, path, nil)
	if !ok {
		return nil
	}
	out := make(map[string]float64, len(entries))
	for _, e := range entries {
		out[e.key], _ = d.number(e.val, e.path) // a bad weight stays, as 0
	}
	return out
}

func (d *decoder) resolver(n *yaml.Node, path string, r Resolver) Resolver {
	entries, _ := d.mapping(n, path, resolverKeys)
	for _, e := range entries {
		if isNull(e.val) {
			continue
		}
		switch e.key {
		case "ttl":
			r.TTL, _ = d.duration(e.val, e.path)
		case "health_interval":
			r.HealthInterval, _ = d.duration(e.val, e.path)
		}
	}
	return r
}

// Scalars. Each reports a value of the wrong kind and returns ok=false.

func (d *decoder) scalar(n *yaml.Node, path, want string, tags ...string) (*yaml.Node, bool) {
	line, n := n.Line, resolve(n)
	if n.Kind != yaml.ScalarNode || !slices.Contains(tags, n.ShortTag()) {
		d.fail(line, path, "want %s, got %s", want, describe(n))
		return n, false
	}
	return n, true
}

func (d *decoder) str(n *yaml.Node, path string) (string, bool) {
	n, ok := d.scalar(n, path, "a string", "!!str")
	if !ok {
		return "", false
	}
	return n.Value, true
}

func (d *decoder) boolean(n *yaml.Node, path string) (bool, bool) {
	n, ok := d.scalar(n, path, "true or false", "!!bool")
	var v bool
	if ok && n.Decode(&v) != nil {
		d.fail(n.Line, path, "want true or false, got %s", describe(n))
		return false, false
	}
	return v, ok
}

func (d *decoder) integer(n *yaml.Node, path string) (int, bool) {
	n, ok := d.scalar(n, path, "a whole number", "!!int")
	var v int
	if ok && n.Decode(&v) != nil {
		d.fail(n.Line, path, "%s is out of range", n.Value)
		return 0, false
	}
	return v, ok
}

func (d *decoder) number(n *yaml.Node, path string) (float64, bool) {
	n, ok := d.scalar(n, path, "a number", "!!int", "!!float")
	var v float64
	if ok && (n.Decode(&v) != nil || math.IsNaN(v) || math.IsInf(v, 0)) {
		d.fail(n.Line, path, "want a finite number, got %s", n.Value)
		return 0, false
	}
	return v, ok
}

// millis reads a number of milliseconds (fractions allowed) as a Duration.
func (d *decoder) millis(n *yaml.Node, path string) (time.Duration, bool) {
	v, ok := d.number(n, path)
	if !ok {
		return 0, false
	}
	if math.Abs(v) > 1e9 { // would overflow a Duration; Validate's bound is far lower
		d.fail(resolve(n).Line, path, "must be at most %s, got %s", fmtMillis(MaxLinkRTT), resolve(n).Value)
		return 0, false
	}
	return time.Duration(math.Round(v * float64(time.Millisecond))), true
}

func (d *decoder) duration(n *yaml.Node, path string) (time.Duration, bool) {
	n, ok := d.scalar(n, path, "a duration such as 2s or 250ms", "!!str")
	if !ok {
		return 0, false
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		d.fail(n.Line, path, "%q is not a duration: want a number with a unit, such as 2s or 250ms", n.Value)
		return 0, false
	}
	return v, true
}

// resolve follows aliases (*name) to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 32; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n.Kind == 0 || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names a node's kind for an error: "the string \"x\"", "a list".
func describe(n *yaml.Node) string {
	n = resolve(n)
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "…"
		}
		switch n.ShortTag() {
		case "!!str":
			return fmt.Sprintf("the string %q", v)
		case "!!int", "!!float":
			return "the number " + v
		case "!!bool":
			return "the boolean " + v
		case "!!null":
			return "nothing"
		default:
			return fmt.Sprintf("%s %q", n.ShortTag(), v)
		}
	}
	return "nothing"
}
