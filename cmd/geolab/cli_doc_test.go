package main

import (
	"bytes"
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
	eachCommand(newRoot(), func(c *cobra.Command) {
		if !strings.Contains(doc, "## "+c.CommandPath()) {
			t.Errorf("docs/cli.md has no section for %q", c.CommandPath())
		}
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if !strings.Contains(doc, "--"+f.Name+" ") && !strings.Contains(doc, "--"+f.Name+"\n") {
				t.Errorf("docs/cli.md does not document %s --%s", c.CommandPath(), f.Name)
			}
		})
	})
}

// eachCommand calls f for c and every command below it that a user sees.
func eachCommand(c *cobra.Command, f func(*cobra.Command)) {
	f(c)
	for _, sub := range c.Commands() {
		if sub.Name() != "help" && sub.Name() != "completion" && !sub.Hidden {
			eachCommand(sub, f)
		}
	}
}

// Each section of docs/cli.md is exactly its command's --help, so that the
// page never drifts from the binary. Regenerate a section by pasting
// `geolab COMMAND --help` (with GEOLAB_STATE and TMPDIR unset).
func TestDocsCLIIsTheHelpOfEveryCommand(t *testing.T) {
	t.Setenv("GEOLAB_STATE", "")
	t.Setenv("TMPDIR", "/tmp")
	b, err := os.ReadFile("../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	eachCommand(newRoot(), func(c *cobra.Command) {
		if c.HasParent() {
			var help bytes.Buffer
			c.InitDefaultHelpFlag()
			c.SetOut(&help)
			if err := c.Help(); err != nil {
				t.Fatal(err)
			}
			if want := "## " + c.CommandPath() + "\n\n```text\n" + help.String() + "```"; !strings.Contains(doc, want) {
				t.Errorf("docs/cli.md: the section of %q is not its --help; it should read:\n%s", c.CommandPath(), want)
			}
		}
	})
}
