// Package doclinks holds one test that keeps the repository's documents
// honest about where they send a reader. It has no code of its own.
//
// TestDocumentLinks walks the repository (bin/, reports/ and .git/ left
// out) and fails, naming every file:line and target, when:
//
//   - a markdown link in a *.md file, [text](path) or [text](path#anchor)
//     or a [label]: path definition, points at a file or directory that
//     does not exist, or at an #anchor that no heading of the target
//     document makes (GitHub's heading slugs). Links with a scheme
//     (https:, mailto:) are not checked;
//   - a *.md or *.go file names a markdown file (docs/faults.md,
//     ../../docs/cli.md, checker.md) that exists neither beside the file
//     nor at the repository root. The design is docs/design.md; a design
//     document outside the repository is a dead end for the next reader;
//   - a *.md or *.go file names a path that climbs out of the repository
//     (../ past the root) or an absolute path of the machine it was
//     written on.
//
// Run it with `go test ./internal/doclinks/`.
package doclinks
