package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/builderdev/builder/client"
	"github.com/spf13/cobra"
)

// newHistoryCmd is `builder history`: the last builds of the store, and
// `builder history show N`: one of them step by step.
func newHistoryCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "history",
		Short: "List the last builds of this store (newest first, numbered from 1)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			builds, err := loadHistory(cmd, g)
			if err != nil {
				return err
			}
			writeHistory(cmd.OutOrStdout(), builds)
			return nil
		},
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "show N",
		Short: "Show build N of `builder history`: its steps, their times and why each missed the cache",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.Atoi(args[0])
			if err != nil || n < 1 {
				return usagef("build number %q: want 1 (the last build), 2, ...", args[0])
			}
			builds, err := loadHistory(cmd, g)
			if err != nil {
				return err
			}
			if n > len(builds) {
				return usagef("no build %d: the store logged %d", n, len(builds))
			}
			writeBuild(cmd.OutOrStdout(), n, builds[n-1])
			return nil
		},
	})
	return cmd
}

func loadHistory(cmd *cobra.Command, g *globalFlags) ([]client.LoggedBuild, error) {
	c, err := openClient(cmd, g)
	if err != nil {
		return nil, err
	}
	return c.History(cmd.Context())
}

func writeHistory(w io.Writer, builds []client.LoggedBuild) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "N\tSTARTED\tTARGET\tTAGS\tDURATION\tSTEPS\tHITS\tRESULT")
	for i, b := range builds {
		steps, hits := countSteps(b)
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", i+1, b.Start.Local().Format(time.DateTime), target(b),
			orNone(strings.Join(b.Tags, ",")), seconds(b.Duration), steps, hits, result(b))
	}
	_ = tw.Flush()
}

func writeBuild(w io.Writer, n int, b client.LoggedBuild) {
	steps, hits := countSteps(b)
	fmt.Fprintf(w, "build %d: %s (%s), target %s\n", n, b.Context, b.Dockerfile, target(b))
	fmt.Fprintf(w, "started %s, took %s: %d steps, %d cached; %s\n", b.Start.Local().Format(time.DateTime), seconds(b.Duration), steps, hits, result(b))
	if b.Manifest != "" {
		fmt.Fprintf(w, "manifest %s\n", b.Manifest)
	}
	if len(b.Tags) > 0 {
		fmt.Fprintf(w, "tags %s\n", strings.Join(b.Tags, ", "))
	}
	for _, s := range b.Steps {
		state := "DONE"
		switch {
		case s.Error != "":
			state = "ERROR"
		case s.Cached && s.From != "":
			state = "CACHED (" + s.From + ")"
		case s.Cached:
			state = "CACHED"
		}
		fmt.Fprintf(w, "#%d %s %s %.3fs\n", s.ID, s.Name, state, s.Duration.Seconds())
		if s.Miss != "" {
			fmt.Fprintf(w, "#%d cache miss: %s\n", s.ID, s.Miss)
		}
		if s.Error != "" {
			fmt.Fprintf(w, "#%d error: %s\n", s.ID, s.Error)
		}
	}
}

// countSteps counts as --metadata-file does: finished steps, and hits.
func countSteps(b client.LoggedBuild) (steps, hits int) {
	for _, s := range b.Steps {
		if s.Error == "" {
			steps++
			if s.Cached {
				hits++
			}
		}
	}
	return steps, hits
}

func target(b client.LoggedBuild) string {
	if b.Target == "" {
		return "(last stage)"
	}
	return b.Target
}

func result(b client.LoggedBuild) string {
	switch {
	case b.Canceled:
		return "canceled"
	case b.Error != "":
		return "failed: " + b.Error
	}
	return "ok"
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
