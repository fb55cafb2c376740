package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/geolab/geolab/lab/topology"
)

func newValidateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check topology files, naming the line and field of every error",
		Long: `Parse and check each FILE as the lab would before starting anything. A good
file prints "FILE: ok (N regions, M gateways)"; a bad one prints each error as
FILE:LINE: FIELD: what is wrong, and the command exits non-zero. The format is
described in docs/topology.md.`,
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

// validateFile checks one file and summarizes it. Every file is a topology
// for now. This is where other kinds will be told apart when they come: a
// scenario file (a topology, a timeline of faults, a workload) will be known
// by its top-level "topology:" key and checked by its own Load.
func validateFile(path string) (summary string, err error) {
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
