package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newVolumeCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "volume",
		Short: "Manage the named volumes of builder run (-v NAME:/path)",
	}
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List the named volumes",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := openClient(cmd, g)
			if err != nil {
				return err
			}
			vs, err := c.Volumes(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "VOLUME NAME\tIN USE")
			for _, v := range vs {
				use := "no"
				if v.InUse {
					use = "yes"
				}
				fmt.Fprintf(tw, "%s\t%s\n", v.Name, use)
			}
			return tw.Flush()
		},
	}
	rm := &cobra.Command{
		Use:   "rm VOLUME...",
		Short: "Remove named volumes (not one a running container uses)",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := openClient(cmd, g)
			if err != nil {
				return err
			}
			if err := c.RemoveVolumes(cmd.Context(), args); err != nil {
				return err
			}
			for _, a := range args {
				fmt.Fprintln(cmd.OutOrStdout(), a)
			}
			return nil
		},
	}
	var all bool
	prune := &cobra.Command{
		Use:   "prune",
		Short: "Remove unused volumes",
		Long: `Remove unused volumes. As docker volume prune, without --all it removes only
anonymous volumes, and builder keeps none (an anonymous volume is removed
with its container): --all removes every named volume no running container
uses.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !all {
				fmt.Fprintln(cmd.OutOrStdout(), "Total reclaimed: no anonymous volumes are kept (--all removes unused named volumes)")
				return nil
			}
			c, err := openClient(cmd, g)
			if err != nil {
				return err
			}
			removed, err := c.PruneVolumes(cmd.Context())
			for _, n := range removed {
				fmt.Fprintln(cmd.OutOrStdout(), "Deleted:", n)
			}
			return err
		},
	}
	prune.Flags().BoolVarP(&all, "all", "a", false, "remove every named volume no running container uses")
	prune.Flags().BoolP("force", "f", false, "do not prompt (builder never prompts)")
	cmd.AddCommand(ls, rm, prune)
	return cmd
}
