// Command geolab is the one binary of geolab: the gateway and federation
// bridge (the system under test), the token authority, and the lab. Each
// subcommand parses flags, calls its package and prints what it answers;
// the logic, status formatting included (lab/control, lab/stack), lives in
// the packages. Flag names live only here: a package names its fields, and
// a subcommand renames them to its flags (fielderr.Rename).
package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "geolab:", err)
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}

type globalFlags struct {
	logLevel  string
	logFormat string
}

func newRoot() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:   "geolab",
		Short: "Chaos and geo-simulation test lab for multi-region WebSocket fan-out",
		Long: `geolab holds a system under test — a WebSocket gateway and a cross-region
federation bridge on per-region Redis — and the lab that runs them in simulated
regions, breaks the network and the processes on purpose, and checks what every
client saw. See README.md and docs/.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "text", "log format: text or json (on stderr)")
	root.AddCommand(newGatewayCmd(g), newFederationCmd(g), newTokenCmd(), newBenchCmd(), newVersionCmd(),
		newToxiproxyCmd(), newValidateCmd(),
		newUpCmd(g), newStatusCmd(), newFaultCmd(), newHealCmd(), newDownCmd(), newRunCmd(g), newExploreCmd(g), newAgentCmd(g))
	return root
}

// logger builds the slog logger the global flags ask for.
func (g *globalFlags) logger() (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", g.logLevel)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch strings.ToLower(g.logFormat) {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", g.logFormat)
}

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print geolab's version and protocol version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "geolab %s (protocol v1)\n", version)
		},
	}
}
