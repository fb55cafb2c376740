package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/geolab/geolab/lab/fault"
	"github.com/geolab/geolab/lab/stack"
)

// toxiproxyFlagDoc is the --toxiproxy flag's help on fault, heal and status.
const toxiproxyFlagDoc = "drive the stack behind this Toxiproxy API (host:port) instead of the lab 'geolab up' runs, e.g. the docker-compose.yml stack at 127.0.0.1:8474: network faults only (docs/docker.md)"

// stackOrState rejects --toxiproxy together with an explicit --state.
func stackOrState(cmd *cobra.Command) error {
	if cmd.Flags().Changed("toxiproxy") && cmd.Flags().Changed("state") {
		return fmt.Errorf("--toxiproxy and --state: give one (--toxiproxy drives a stack's Toxiproxy, --state a lab 'geolab up' runs)")
	}
	return nil
}

// stackFault injects s into the stack behind url. Without s.For the fault
// stays until 'geolab heal --toxiproxy'; with it, the command waits, heals
// it when the time is up or at Ctrl-C, and returns.
func stackFault(cmd *cobra.Command, url string, s fault.Spec) error {
	st, err := stack.Attach(url)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	healed := make(chan fault.Event, 1)
	st.Observe(func(e fault.Event) {
		if e.Action == "heal" {
			select {
			case healed <- e:
			default:
			}
		}
	})
	a, err := st.Inject(cmd.Context(), s)
	if err != nil {
		return err
	}
	if s.For == 0 {
		traces, err := st.Faults()
		if err != nil {
			return err
		}
		for _, t := range traces {
			if t.ID == a.ID {
				fmt.Fprintf(out, "%s: %s %s injected, until 'geolab heal --toxiproxy %s %s'\n", a.ID, s.Kind, a.Target, url, a.ID)
				return nil
			}
		}
		fmt.Fprintf(out, "%s: %s %s injected and already over (it leaves nothing to heal)\n", a.ID, s.Kind, a.Target)
		return nil
	}
	fmt.Fprintf(out, "%s: %s %s injected for %s; this command heals it then (Ctrl-C heals it now)\n", a.ID, s.Kind, a.Target, s.For)
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case e := <-healed:
		if e.Err != nil {
			return e.Err
		}
	case <-ctx.Done():
		hctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := st.Heal(hctx, a.ID); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "healed %s\n", a.ID)
	return nil
}

// stackHeal heals fault id (every fault with id "") on the stack behind url.
func stackHeal(cmd *cobra.Command, url, id string) error {
	st, err := stack.Attach(url)
	if err != nil {
		return err
	}
	healed, err := st.Heal(cmd.Context(), id)
	return reportHealed(cmd.OutOrStdout(), healed, err)
}

// stackStatus prints the stack behind url: its links and the faults on them.
func stackStatus(cmd *cobra.Command, url string, asJSON bool) error {
	st, err := stack.Attach(url)
	if err != nil {
		return err
	}
	v, err := st.Status()
	if err != nil {
		return err
	}
	return printStatus(cmd.OutOrStdout(), asJSON, v, func(w io.Writer) { stack.PrintStatus(w, v) })
}

// printStatus writes a status as indented JSON when asJSON, else as the
// text that text writes: the one shape of both status commands' output.
func printStatus(w io.Writer, asJSON bool, v any, text func(io.Writer)) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text(w)
	return nil
}
