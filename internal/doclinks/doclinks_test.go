package doclinks

import (
	"bufio"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"
	"unicode"
)

// skipDirs are directories of the repository root that hold no documents
// of the project: build output, run reports, git's own files.
var skipDirs = map[string]bool{"bin": true, "reports": true, ".git": true}

// selfDir is this package: it names the patterns it looks for, so the
// mention checks leave it out (its links, if any, are still checked).
const selfDir = "internal/doclinks"

// machinePaths are absolute paths of a workstation that mean nothing in
// another clone.
var machinePaths = []string{"/work/"}

var (
	// inlineLink is [text](target) or [text](<target>) with an optional
	// title; ![alt](src) images match too.
	inlineLink = regexp.MustCompile(`\[[^\]]*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+"[^"]*")?\s*\)`)
	// refDef is a reference definition: [label]: target
	refDef = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)`)
	// scheme starts an absolute URL (https:, mailto:, ws:); such links are
	// not checked.
	scheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)
	// urlText is an absolute URL in running text; mentions inside it are
	// not paths of this repository.
	urlText = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s)"'\x60>]*`)
	// mdMention is a path ending in .md, not preceded by a path character.
	mdMention = regexp.MustCompile(`(?:^|[^A-Za-z0-9_./-])([A-Za-z0-9_./-]*[A-Za-z0-9_-]\.md)\b`)
	// upMention is a relative path that starts by climbing: ../x, ../../x.
	upMention = regexp.MustCompile(`(?:^|[^A-Za-z0-9_./-])((?:\.\./)+[A-Za-z0-9_./-]*)`)
	// atxHeading is a "## Title" line; the closing #s are optional.
	atxHeading = regexp.MustCompile(`^\s{0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$`)
	// setextUnderline turns the line above it into a heading.
	setextUnderline = regexp.MustCompile(`^\s{0,3}(=+|-+)\s*$`)
	// htmlAnchor is an explicit anchor: <a name="x"> or id="x".
	htmlAnchor = regexp.MustCompile(`<a\s[^>]*(?:name|id)="([^"]+)"`)
	// codeSpan is inline code; links inside it are text, not links.
	codeSpan = regexp.MustCompile("`+[^`]*`+")
	// linkText reduces [text](target) to text, as GitHub renders a heading
	// before it makes the heading's slug.
	linkText = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
)

// problem is one thing wrong, where it was found.
type problem struct {
	file   string // relative to the repository root, slash-separated
	line   int
	target string
	why    string
}

func (p problem) String() string {
	return fmt.Sprintf("%s:%d: %s: %s", p.file, p.line, p.target, p.why)
}

// repoRoot is the directory holding go.mod, found from this file's path.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("runtime.Caller gave no file: cannot find the repository root")
	}
	dir := filepath.Dir(file)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no go.mod above %s", file)
		}
		dir = parent
	}
}

// documents returns the *.md and *.go files of the repository, relative to
// root and slash-separated, in a stable order.
func documents(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if skipDirs[rel] || (rel != "." && d.Name() == ".git") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(rel, ".md") || strings.HasSuffix(rel, ".go") {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	sort.Strings(files)
	return files
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("%v", err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return lines
}

// TestDocumentLinks is the check the package doc describes.
func TestDocumentLinks(t *testing.T) {
	root := repoRoot(t)
	files := documents(t, root)
	if len(files) == 0 {
		t.Fatalf("no *.md or *.go files under %s", root)
	}
	c := &checker{root: root, anchors: map[string]map[string]bool{}, lines: map[string][]string{}}
	var problems []problem
	nmd := 0
	for _, f := range files {
		lines := c.read(t, f)
		if strings.HasSuffix(f, ".md") {
			nmd++
			problems = append(problems, c.links(t, f, lines)...)
		}
		if !strings.HasPrefix(f, selfDir+"/") {
			problems = append(problems, c.mentions(f, lines)...)
		}
	}
	if nmd == 0 {
		t.Fatalf("no *.md files under %s: is this the repository root?", root)
	}
	if len(problems) > 0 {
		var b strings.Builder
		fmt.Fprintf(&b, "%d broken reference(s) in the repository's documents:\n", len(problems))
		for _, p := range problems {
			b.WriteString("  " + p.String() + "\n")
		}
		t.Error(b.String())
	}
}

// checker remembers what it read, so that a document linked from many
// places is read and slugged once.
type checker struct {
	root    string
	lines   map[string][]string        // file → lines
	anchors map[string]map[string]bool // md file → its anchors
}

func (c *checker) read(t *testing.T, rel string) []string {
	if l, ok := c.lines[rel]; ok {
		return l
	}
	l := readLines(t, filepath.Join(c.root, filepath.FromSlash(rel)))
	c.lines[rel] = l
	return l
}

// links checks every markdown link of one *.md file.
func (c *checker) links(t *testing.T, file string, lines []string) []problem {
	var out []problem
	for _, l := range markdownLinks(lines) {
		target := l.target
		if scheme.MatchString(target) {
			continue
		}
		pathPart, anchor, _ := strings.Cut(target, "#")
		pathPart, _, _ = strings.Cut(pathPart, "?")
		if p, err := url.PathUnescape(pathPart); err == nil {
			pathPart = p
		}
		bad := func(why string) { out = append(out, problem{file, l.line, target, why}) }
		dest := file // a pure #anchor points into this file
		if pathPart != "" {
			var ok bool
			dest, ok = c.resolve(file, pathPart)
			if !ok {
				bad("points outside the repository")
				continue
			}
			if _, err := os.Stat(filepath.Join(c.root, filepath.FromSlash(dest))); err != nil {
				bad("no such file or directory")
				continue
			}
		}
		if anchor == "" || !strings.HasSuffix(dest, ".md") {
			continue
		}
		if !c.anchorsOf(t, dest)[strings.ToLower(anchor)] {
			bad(fmt.Sprintf("no heading of %s makes the anchor #%s", dest, anchor))
		}
	}
	return out
}

// resolve turns a link target of file into a path relative to the root:
// "/x" from the root, anything else from file's directory. ok is false when
// the target climbs out of the repository.
func (c *checker) resolve(file, target string) (string, bool) {
	var p string
	if strings.HasPrefix(target, "/") {
		p = strings.TrimPrefix(target, "/")
	} else {
		p = pathJoin(pathDir(file), target)
	}
	p = cleanSlash(p)
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", false
	}
	return p, true
}

func (c *checker) anchorsOf(t *testing.T, md string) map[string]bool {
	if a, ok := c.anchors[md]; ok {
		return a
	}
	a := anchorsOf(c.read(t, md))
	c.anchors[md] = a
	return a
}

// mentions checks the paths one *.md or *.go file names in its text:
// markdown files that must exist, and paths that must stay inside the
// repository.
func (c *checker) mentions(file string, lines []string) []problem {
	var out []problem
	for i, line := range lines {
		n := i + 1
		for _, m := range machinePaths {
			if strings.Contains(line, m) {
				out = append(out, problem{file, n, m, "an absolute path of one machine: name a path inside the repository"})
			}
		}
		text := urlText.ReplaceAllString(line, " ")
		for _, m := range upMention.FindAllStringSubmatch(text, -1) {
			if _, ok := c.resolve(file, m[1]); !ok {
				out = append(out, problem{file, n, m[1], "climbs out of the repository"})
			}
		}
		for _, m := range mdMention.FindAllStringSubmatch(text, -1) {
			if c.mdExists(file, m[1]) {
				continue
			}
			why := "no such markdown file beside this file or at the repository root"
			if strings.EqualFold(pathBase(m[1]), "design.md") {
				why += " (the design is docs/design.md)"
			}
			out = append(out, problem{file, n, m[1], why})
		}
	}
	return out
}

// mdExists reports whether a mentioned markdown file exists, read from the
// mentioning file's directory or from the root.
func (c *checker) mdExists(file, mention string) bool {
	for _, base := range []string{pathDir(file), "."} {
		p, ok := c.resolve(pathJoin(base, "x"), mention)
		if !ok {
			continue
		}
		if st, err := os.Stat(filepath.Join(c.root, filepath.FromSlash(p))); err == nil && !st.IsDir() {
			return true
		}
	}
	return false
}

// link is one markdown link target and its line.
type link struct {
	line   int
	target string
}

// markdownLinks returns the link targets of a markdown document, outside
// fenced code blocks and code spans.
func markdownLinks(lines []string) []link {
	var out []link
	prose := proseLines(lines)
	for i, line := range lines {
		if !prose[i] {
			continue
		}
		text := codeSpan.ReplaceAllString(line, "")
		for _, m := range inlineLink.FindAllStringSubmatch(text, -1) {
			out = append(out, link{i + 1, strings.Trim(m[1], "<>")})
		}
		if m := refDef.FindStringSubmatch(text); m != nil {
			out = append(out, link{i + 1, strings.Trim(m[1], "<>")})
		}
	}
	return out
}

// proseLines says, line by line, whether a markdown document's line is
// prose: neither a code fence nor inside a fenced block.
func proseLines(lines []string) []bool {
	prose := make([]bool, len(lines))
	fence := ""
	for i, line := range lines {
		if f := fenceOf(line); f != "" {
			switch {
			case fence == "":
				fence = f
			case strings.HasPrefix(f, fence):
				fence = ""
			}
			continue
		}
		prose[i] = fence == ""
	}
	return prose
}

// fenceOf returns the fence a line opens or closes (``` or ~~~, any
// longer run), or "".
func fenceOf(line string) string {
	s := strings.TrimLeft(line, " ")
	if len(line)-len(s) > 3 {
		return ""
	}
	for _, ch := range []string{"`", "~"} {
		n := 0
		for n < len(s) && s[n:n+1] == ch {
			n++
		}
		if n >= 3 {
			return s[:n]
		}
	}
	return ""
}

// anchorsOf returns every anchor a markdown document makes: its headings'
// GitHub slugs (a repeated slug gets -1, -2, …) and explicit HTML anchors.
func anchorsOf(lines []string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	add := func(title string) {
		s := slug(title)
		if n := seen[s]; n > 0 {
			out[fmt.Sprintf("%s-%d", s, n)] = true
		} else {
			out[s] = true
		}
		seen[s]++
	}
	prose := proseLines(lines)
	prev := ""
	for i, line := range lines {
		if !prose[i] {
			prev = ""
			continue
		}
		for _, m := range htmlAnchor.FindAllStringSubmatch(line, -1) {
			out[strings.ToLower(m[1])] = true
		}
		switch {
		case atxHeading.MatchString(line):
			add(atxHeading.FindStringSubmatch(line)[1])
			prev = ""
			continue
		case setextUnderline.MatchString(line) && strings.TrimSpace(prev) != "" &&
			!strings.HasPrefix(strings.TrimSpace(prev), "|"):
			add(prev)
			prev = ""
			continue
		}
		prev = line
	}
	return out
}

// slug is GitHub's anchor for a heading: the rendered text, lower case,
// every character that is not a letter, digit, mark, connector (_), space
// or hyphen dropped, each space made a hyphen.
func slug(title string) string {
	title = linkText.ReplaceAllString(title, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(title)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) ||
			unicode.Is(unicode.Pc, r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Slash-path helpers: the repository's paths are kept slash-separated so
// that messages read the same on every system.

func pathDir(p string) string {
	if i := strings.LastIndex(p, "/"); i >= 0 {
		return p[:i]
	}
	return "."
}

func pathBase(p string) string {
	return p[strings.LastIndex(p, "/")+1:]
}

func pathJoin(dir, p string) string {
	if dir == "." || dir == "" {
		return p
	}
	return dir + "/" + p
}

// cleanSlash is path.Clean that keeps leading ".." (a path above the root).
func cleanSlash(p string) string {
	var parts []string
	for _, s := range strings.Split(p, "/") {
		switch {
		case s == "" || s == ".":
		case s == ".." && len(parts) > 0 && parts[len(parts)-1] != "..":
			parts = parts[:len(parts)-1]
		default:
			parts = append(parts, s)
		}
	}
	if len(parts) == 0 {
		return "."
	}
	return strings.Join(parts, "/")
}

// The helpers above decide what counts as broken; these tests pin them.

func TestSlug(t *testing.T) {
	for _, tc := range []struct{ title, want string }{
		{"Server → client", "server--client"},
		{"The chaos specs (`make chaos`)", "the-chaos-specs-make-chaos"},
		{"Positions, epochs and resume", "positions-epochs-and-resume"},
		{"recovered false reasons", "recovered-false-reasons"},
		{"G12: sharded buses (planned)", "g12-sharded-buses-planned"},
		{"Images: `make images`", "images-make-images"},
		{"See [the protocol](protocol.md)", "see-the-protocol"},
		{"snake_case stays", "snake_case-stays"},
	} {
		if got := slug(tc.title); got != tc.want {
			t.Errorf("slug(%q) = %q, want %q", tc.title, got, tc.want)
		}
	}
}

func TestAnchorsOfRepeatsAndSetext(t *testing.T) {
	a := anchorsOf(strings.Split("# Top\n## Faults\n## Faults\nSetext\n---\n```\n# not a heading\n```\n<a name=\"Here\"></a>", "\n"))
	for _, want := range []string{"top", "faults", "faults-1", "setext", "here"} {
		if !a[want] {
			t.Errorf("anchor %q missing from %v", want, a)
		}
	}
	if a["not-a-heading"] {
		t.Errorf("a heading inside a code fence made an anchor: %v", a)
	}
}

func TestMarkdownLinksSkipCode(t *testing.T) {
	doc := strings.Split("see [a](a.md) and `[b](b.md)`\n```\n[c](c.md)\n```\n[d]: d.md#x\n[e](<e f.md> \"title\")", "\n")
	var got []string
	for _, l := range markdownLinks(doc) {
		got = append(got, fmt.Sprintf("%d:%s", l.line, l.target))
	}
	want := "1:a.md 5:d.md#x 6:e f.md"
	if strings.Join(got, " ") != want {
		t.Errorf("links = %q, want %q", strings.Join(got, " "), want)
	}
}

func TestResolveStaysInside(t *testing.T) {
	c := &checker{}
	for _, tc := range []struct {
		file, target, want string
		ok                 bool
	}{
		{"docs/a.md", "b.md", "docs/b.md", true},
		{"docs/a.md", "../README.md", "README.md", true},
		{"docs/a.md", "/lab/fault", "lab/fault", true},
		{"README.md", "../outside/x.md", "", false},
		{"lab/fault/fault_test.go", "../../docs/faults.md", "docs/faults.md", true},
		{"lab/fault/fault_test.go", "../../../x", "", false},
	} {
		got, ok := c.resolve(tc.file, tc.target)
		if got != tc.want || ok != tc.ok {
			t.Errorf("resolve(%q, %q) = %q, %v; want %q, %v", tc.file, tc.target, got, ok, tc.want, tc.ok)
		}
	}
}
