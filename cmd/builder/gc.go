package main

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/builderdev/builder/client"
	"github.com/spf13/cobra"
)

func newPruneCmd(g *globalFlags) *cobra.Command {
	var all bool
	var keep string
	var filters []string
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Remove untagged images, and cache records, snapshots and blobs that no image needs",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := client.PruneOptions{All: all}
			if keep != "" {
				n, err := parseSize(keep)
				if err != nil {
					return usagef("--keep-storage: %v", err)
				}
				opts.KeepStorage = n
			}
			for _, f := range filters {
				k, v, _ := strings.Cut(f, "=")
				if k != "until" {
					return usagef("--filter %q: only until=DURATION is supported", f)
				}
				d, err := time.ParseDuration(v)
				if err != nil {
					return usagef("--filter %q: %v", f, err)
				}
				opts.Until = d
			}
			b, err := openClient(cmd, g)
			if err != nil {
				return err
			}
			rep, err := b.Prune(cmd.Context(), opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %d cache records, %d snapshots, %d blobs, %d cache mounts; reclaimed %s\n",
				rep.Records, rep.Snapshots, rep.Blobs, rep.Mounts, humanSize(rep.Reclaimed))
			if rep.Images > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "removed %d untagged images\n", rep.Images)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "remove all cache, not only what no image needs")
	cmd.Flags().StringVar(&keep, "keep-storage", "", "keep this much cache (e.g. 10GB), newest first")
	stringsVarP(cmd.Flags(), &filters, "filter", "", "until=DURATION: only cache older than DURATION")
	return cmd
}

// parseSize reads "512", "10kB", "1.5GB", "2g", "100MiB".
func parseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := 1.0
	for _, u := range []struct {
		suf string
		m   float64
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
		{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12}, {"k", 1e3}, {"m", 1e6}, {"g", 1e9}, {"t", 1e12}, {"b", 1}} {
		if strings.HasSuffix(t, u.suf) {
			t, mult = strings.TrimSuffix(t, u.suf), u.m
			break
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	return int64(f * mult), nil
}

func newDfCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "df",
		Short: "Show what the store holds",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := openClient(cmd, g)
			if err != nil {
				return err
			}
			u, err := b.DiskUsage(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "TYPE\tCOUNT\tSIZE")
			fmt.Fprintf(tw, "Images\t%d\t%s\n", u.Images, humanSize(u.ImageBytes))
			fmt.Fprintf(tw, "Build cache\t%d\t%s\n", u.Records, humanSize(u.CacheBytes))
			fmt.Fprintf(tw, "Snapshots\t%d\t%s\n", u.Snapshots, humanSize(u.SnapshotBytes))
			fmt.Fprintf(tw, "Cache mounts\t%d\t%s\n", u.Mounts, humanSize(u.MountBytes))
			fmt.Fprintf(tw, "Git trees\t%d\t%s\n", u.GitTrees, humanSize(u.GitBytes))
			fmt.Fprintf(tw, "Unreferenced blobs\t-\t%s\n", humanSize(u.OtherBytes))
			fmt.Fprintf(tw, "Reclaimable\t\t%s\n", humanSize(u.Reclaimable))
			return tw.Flush()
		},
	}
}

func newCheckCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "check",
		Aliases: []string{"fsck"},
		Short:   "Verify the store: records, images, blobs, snapshots (corrupt blobs are removed; builds re-create them)",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := openClient(cmd, g)
			if err != nil {
				return err
			}
			problems, err := b.Check(cmd.Context())
			if err != nil {
				return err
			}
			for _, p := range problems {
				fmt.Fprintln(cmd.OutOrStdout(), p)
			}
			if len(problems) > 0 {
				return fmt.Errorf("store %s has %d problem(s)", g.root, len(problems))
			}
			fmt.Fprintln(cmd.OutOrStdout(), "store is consistent")
			return nil
		},
	}
}
