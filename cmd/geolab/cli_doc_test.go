package main

import (
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Every flag of every command is in docs/cli.md: a user never needs the
// source to use one. (Regenerate the page from `geolab COMMAND --help`.)
func TestEveryFlagIsInDocsCLI(t *testing.T) {
	b, err := os.ReadFile("../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if !strings.Contains(doc, "## "+c.CommandPath()) {
			t.Errorf("docs/cli.md has no section for %q", c.CommandPath())
		}
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if !strings.Contains(doc, "--"+f.Name+" ") && !strings.Contains(doc, "--"+f.Name+"\n") {
				t.Errorf("docs/cli.md does not document %s --%s", c.CommandPath(), f.Name)
			}
		})
		for _, sub := range c.Commands() {
			if sub.Name() != "help" && sub.Name() != "completion" && !sub.Hidden {
				walk(sub)
			}
		}
	}
	walk(newRoot())
}
