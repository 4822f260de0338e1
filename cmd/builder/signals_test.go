package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/spf13/cobra"
)

// TestWatchSignals: help and a usage error start no signal watch; a
// command that runs gets the context that ends at SIGINT or SIGTERM.
func TestWatchSignals(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		watched bool
	}{
		{[]string{"--help"}, false},
		{[]string{"build", "--help"}, false},
		{[]string{"no-such-command"}, false},
		{[]string{"platforms", "extra-arg"}, false}, // Args fails before the hooks
		{[]string{"probe"}, true},
	} {
		g := &globalFlags{}
		root := newRootCmd(g)
		var got context.Context
		root.AddCommand(&cobra.Command{Use: "probe", RunE: func(cmd *cobra.Command, _ []string) error {
			got = cmd.Context()
			return nil
		}})
		g.defineFlags(root, tc.args)
		root.SetArgs(tc.args)
		root.SetOut(&bytes.Buffer{})
		root.SetErr(&bytes.Buffer{})
		_ = root.ExecuteContext(context.Background())
		g.stopSignals()
		if watched := g.sigCtx != nil; watched != tc.watched {
			t.Errorf("%q: signals watched %v, want %v", tc.args, watched, tc.watched)
		}
		if tc.watched {
			if got != g.sigCtx {
				t.Errorf("%q: the command's context is not the signal context", tc.args)
			}
			if g.signals().Err() == nil {
				t.Errorf("%q: the signal context is not stopped by stopSignals", tc.args)
			}
		} else if g.signals().Err() != nil {
			t.Errorf("%q: a command that did not run reads as interrupted", tc.args)
		}
	}
}
