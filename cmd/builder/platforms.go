package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/builderdev/builder/client"
	"github.com/spf13/cobra"
)

// newPlatformsCmd lists the platforms a build can target and how this host
// runs their RUN steps: natively, under QEMU (a binfmt_misc handler with
// the fix-binary flag), or not, with the command that fixes it.
func newPlatformsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "platforms",
		Short: "List the platforms whose RUN steps this host can run (natively or emulated)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "PLATFORM\tRUN")
			for _, p := range client.Platforms() {
				how := "native"
				switch {
				case p.Err != nil:
					how = "no: " + p.Err.Error()
				case !p.Native:
					how = fmt.Sprintf("emulated (binfmt_misc %s: %s)", p.Handler, p.Interpreter)
				}
				fmt.Fprintf(w, "%s\t%s\n", p.Platform, how)
			}
			return w.Flush()
		},
	}
}
