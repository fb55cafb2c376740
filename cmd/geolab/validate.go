package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/geolab/geolab/lab/scenario"
	"github.com/geolab/geolab/lab/topology"
)

func newValidateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check topology and scenario files, naming the line and field of every error",
		Long: `Parse and check each FILE as the lab would before starting anything. A good
file prints "FILE: ok (…)"; a bad one prints each error as FILE:LINE: FIELD:
what is wrong, and the command exits non-zero. A file with a top-level workload,
timeline or expect key is a scenario (docs/scenarios.md), any other a topology
(docs/topology.md).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			bad := 0
			for _, file := range files {
				summary, err := validateFile(file)
				if err != nil {
					bad++
					fmt.Fprintln(cmd.ErrOrStderr(), err)
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (%s)\n", file, summary)
			}
			if bad > 0 {
				return fmt.Errorf("validate: %d of %d files invalid", bad, len(files))
			}
			return nil
		},
	}
}

// validateFile checks one file and summarizes it: a scenario (known by a
// top-level workload, timeline or expect key) or else a topology.
func validateFile(path string) (summary string, err error) {
	if b, rerr := os.ReadFile(path); rerr == nil && scenario.IsScenario(b) {
		sc, err := scenario.Load(path)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("scenario on %s, %s, %s, %s", sc.Topology.Name, plural(sc.Workload.Clients, "client"),
			plural(len(sc.Timeline), "fault"), plural(len(sc.Expect), "expectation")), nil
	}
	t, err := topology.Load(path)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s, %s", plural(len(t.Regions), "region"), plural(t.Gateways(), "gateway")), nil
}

// plural writes "1 region", "3 regions".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
