package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"text/tabwriter"

	"github.com/builderdev/builder/client"
	"github.com/spf13/cobra"
)

func newImagesCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "images",
		Short: "List the images of the store",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := openClient(cmd, g)
			if err != nil {
				return err
			}
			imgs, err := c.Images(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "NAME\tIMAGE ID\tMANIFEST\tLAYERS\tSIZE")
			for _, im := range imgs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", im.Name, short(im.ID.Encoded()),
					short(im.Manifest.Encoded()), im.Layers, humanSize(im.Size))
			}
			return tw.Flush()
		},
	}
}

func short(hex string) string {
	if len(hex) > 12 {
		return hex[:12]
	}
	return hex
}

func humanSize(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%cB", float64(n)/float64(div), "kMGTPE"[exp])
}

func newInspectCmd(g *globalFlags) *cobra.Command {
	var prov bool
	cmd := &cobra.Command{
		Use:   "inspect IMAGE",
		Short: "Print an image's manifest and config as JSON",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := openClient(cmd, g)
			if err != nil {
				return err
			}
			if prov {
				return printProvenance(cmd, c, args[0])
			}
			out, err := c.Inspect(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(out)
		},
	}
	cmd.Flags().BoolVar(&prov, "provenance", false, "print the image's SLSA provenance statement (in-toto JSON) instead")
	return cmd
}

func newTagCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE TARGET",
		Short: "Give an image another name",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := openClient(cmd, g)
			if err != nil {
				return err
			}
			return c.Tag(cmd.Context(), args[0], args[1])
		},
	}
}

func newRmiCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "rmi IMAGE...",
		Short: "Remove image names (blobs stay until prune)",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := openClient(cmd, g)
			if err != nil {
				return err
			}
			done, err := c.Untag(cmd.Context(), args...)
			for _, name := range done {
				fmt.Fprintf(cmd.OutOrStdout(), "untagged %s\n", name)
			}
			return err
		},
	}
}

func newSaveCmd(g *globalFlags) *cobra.Command {
	var out, format string
	cmd := &cobra.Command{
		Use:   "save IMAGE... -o FILE",
		Short: "Write images to an OCI or docker-archive tar",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usagef("save needs -o FILE")
			}
			var f client.Format
			switch format {
			case "oci":
				f = client.FormatOCI
			case "docker":
				f = client.FormatDocker
			case "oci-layout":
				f = client.FormatOCILayout
			default:
				return usagef("--format must be oci, docker or oci-layout")
			}
			c, err := openClient(cmd, g)
			if err != nil {
				return err
			}
			return c.Save(cmd.Context(), out, f, args...)
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "output file")
	cmd.Flags().StringVar(&format, "format", "oci", "oci, docker or oci-layout")
	return cmd
}

func newLoadCmd(g *globalFlags) *cobra.Command {
	var in string
	cmd := &cobra.Command{
		Use:   "load -i FILE",
		Short: "Import an OCI tar, OCI layout dir or docker-archive tar",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if in == "" {
				return usagef("load needs -i FILE")
			}
			if _, err := os.Stat(in); errors.Is(err, fs.ErrNotExist) {
				return usagef("load: %s does not exist", in)
			}
			c, err := openClient(cmd, g)
			if err != nil {
				return err
			}
			names, err := c.Load(cmd.Context(), in)
			if err != nil {
				return err
			}
			for _, n := range names {
				fmt.Fprintf(cmd.OutOrStdout(), "loaded %s\n", n)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&in, "input", "i", "", "input file or directory")
	return cmd
}
